"""Figures render offline (no coastline download) and keep colours tied to biome names."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from carbon_biomes.figures import plotting
from carbon_biomes.workflow.products import save_figure


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted during plotting")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def _labels(box_size: float = 10.0):
    rng = np.random.default_rng(0)
    n_lat, n_lon = int(180 / box_size), int(360 / box_size)
    ids = np.sort(rng.choice(n_lat * n_lon, n_lat * n_lon // 2, replace=False))
    lat_row = ids // n_lon
    labels = np.where(lat_row < n_lat / 3, 1, np.where(lat_row < 2 * n_lat / 3, 2, 3))
    grid = np.ma.masked_all(n_lat * n_lon, dtype=np.int16)
    grid[ids] = labels
    return grid.reshape(n_lat, n_lon)


@pytest.mark.parametrize("curvilinear", [False, True])
def test_biome_map_renders_without_network(tmp_path, no_network, curvilinear):
    lat = np.linspace(-89.5, 89.5, 180)
    lon = np.linspace(-179.5, 179.5, 360)
    if curvilinear:
        lat, lon = np.meshgrid(lat, lon, indexing="ij")
        land = (lon > 0) & (lon < 40) & (np.abs(lat) < 30)
    else:
        land = np.zeros((180, 360), bool)
        land[60:120, 180:220] = True
    fig = plotting.new_figure()
    ax = plotting.map_axes(fig)
    names = {1: "SUBP+UP I", 2: "SUBTR", 3: "ICE"}
    plotting.plot_biome_map(ax, _labels(), 10.0, names, land=(lat, lon, land), title="test")
    path = save_figure(fig, tmp_path / "map.png")
    assert path.stat().st_size > 10_000
    assert not list(tmp_path.glob(".*partial*"))


def test_colours_follow_names_not_numbers():
    a = plotting.biome_colours({1: "SUBTR I", 2: "ICE"})
    b = plotting.biome_colours({5: "ICE", 7: "SUBTR I"})
    assert a[1] == b[7] and a[2] == b[5]
    family = {plotting.biome_colour(f"SUBTR {n}") for n in ("I", "II", "III")}
    assert len(family) == 3


def test_dendrogram_node_positions_match_scipy():
    from scipy.cluster.hierarchy import dendrogram, linkage

    x = np.random.default_rng(3).normal(size=(40, 3))
    link = linkage(x, "ward")
    xs, heights = plotting.dendrogram_node_positions(link)
    drawn = dendrogram(link, no_plot=True)
    # each drawn link's top midpoint is an internal node at its height
    tops = {(round((ic[1] + ic[2]) / 2, 6), round(dc[1], 6)) for ic, dc in
            zip(drawn["icoord"], drawn["dcoord"], strict=True)}  # fmt: skip
    ours = {(round(xs[n], 6), round(heights[n], 6)) for n in range(40, 79)}
    assert tops == ours
