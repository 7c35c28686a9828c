"""Horizontal grids of the fictitious models: regular and curvilinear, with cell areas."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from carbon_biomes.sample_data.geography import _smoothstep, _wrap180, land_mask
from carbon_biomes.sample_data.models import ModelSpec

__all__ = ["EARTH_RADIUS", "MAX_RESOLUTION", "MIN_RESOLUTION", "Grid", "build_grid"]

#: Radius of the spherical Earth used for cell areas (m).
EARTH_RADIUS = 6_371_000.0
#: Smallest and largest accepted nominal resolution (degrees).
MIN_RESOLUTION = 0.25
MAX_RESOLUTION = 10.0


@dataclass(frozen=True)
class Grid:
    """Horizontal grid of a generated model.

    Attributes
    ----------
    grid_type
        ``"regular"`` or ``"curvilinear"``.
    resolution
        Nominal resolution (degrees).
    lat, lon
        Cell-centre latitude and longitude (degrees; longitude in [0, 360)), 2-D arrays of
        the grid's shape ``(ny, nx)``.
    lat_vertices, lon_vertices
        Cell corners, shape ``(ny, nx, 4)``, counter-clockwise.
    area
        Cell area on a sphere of radius :data:`EARTH_RADIUS` (m2), including land cells.
    land
        Land mask (``True`` on land).
    lat_1d, lon_1d, lat_bounds_1d, lon_bounds_1d
        1-D coordinates and ``(n, 2)`` bounds of a regular grid (``None`` if curvilinear).
    """

    grid_type: str
    resolution: float
    lat: np.ndarray
    lon: np.ndarray
    lat_vertices: np.ndarray
    lon_vertices: np.ndarray
    area: np.ndarray
    land: np.ndarray
    lat_1d: np.ndarray | None = None
    lon_1d: np.ndarray | None = None
    lat_bounds_1d: np.ndarray | None = None
    lon_bounds_1d: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Shape ``(ny, nx)`` of the horizontal grid."""
        return self.lat.shape  # type: ignore[return-value]

    @property
    def ocean(self) -> np.ndarray:
        """Ocean mask (``True`` on ocean cells)."""
        return ~self.land


def _check_resolution(resolution: float) -> None:
    if not math.isfinite(resolution) or resolution <= 0:
        msg = f"invalid resolution {resolution:g}: it must be a positive number of degrees"
        raise ValueError(msg)
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        msg = (
            f"invalid resolution {resolution:g}: it must lie between {MIN_RESOLUTION:g} and "
            f"{MAX_RESOLUTION:g} degrees"
        )
        raise ValueError(msg)


def _n_cells(span: float, resolution: float) -> int:
    """Count the cells of size ``resolution`` in ``span`` degrees (a whole number)."""
    n = span / resolution
    if abs(n - round(n)) > 1e-6 or round(n) < 2:
        msg = (
            f"invalid resolution {resolution:g}: it must divide {span:g} degrees into a "
            "whole number of cells (e.g. 0.25, 0.5, 1, 2, 3, 4, 5)"
        )
        raise ValueError(msg)
    return round(n)


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Cartesian unit vectors (last axis x, y, z) of points on the sphere (degrees)."""
    phi = np.deg2rad(lat)
    lam = np.deg2rad(lon)
    return np.stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)), axis=-1)


def _lat_lon(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude in [0, 360) (degrees) of Cartesian unit vectors."""
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    lat = np.rad2deg(np.arcsin(np.clip(z, -1.0, 1.0)))
    lon = np.rad2deg(np.arctan2(y, x)) % 360.0
    return lat, lon


def _spherical_triangle_area(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Area of unit-sphere triangles (Van Oosterom and Strackee 1983)."""
    numerator = np.abs(np.einsum("...i,...i->...", a, np.cross(b, c)))
    denominator = (
        1.0
        + np.einsum("...i,...i->...", a, b)
        + np.einsum("...i,...i->...", b, c)
        + np.einsum("...i,...i->...", c, a)
    )
    return 2.0 * np.arctan2(numerator, denominator)


def _displaced_pole(
    lat: np.ndarray, lon: np.ndarray, pole_lat: float, pole_lon: float, start_lat: float
) -> tuple[np.ndarray, np.ndarray]:
    """Map logical latitude/longitude to a grid whose north pole sits at (pole_lat, pole_lon).

    Points south of ``start_lat`` are unchanged; further north each logical latitude circle
    is rotated towards ``pole_lon`` by an angle growing smoothly to ``90 - pole_lat`` at the
    logical pole. The rotation grows slowly enough (less than 1 degree per degree of
    latitude) that latitude circles never cross, so the mapping is a valid grid.
    """
    angle = np.deg2rad((90.0 - pole_lat) * _smoothstep(lat, start_lat, 90.0))
    axis = _unit_vectors(np.zeros(()), np.asarray(pole_lon + 90.0))
    points = _unit_vectors(lat, lon)
    cos_a = np.cos(angle)[..., None]
    sin_a = np.sin(angle)[..., None]
    axis_b = np.broadcast_to(axis, points.shape)
    rotated = (
        points * cos_a
        + np.cross(axis_b, points) * sin_a
        + axis_b * np.einsum("...i,...i->...", axis_b, points)[..., None] * (1.0 - cos_a)
    )
    return _lat_lon(rotated)


def build_grid(spec: ModelSpec, resolution: float | None = None) -> Grid:
    """Build the horizontal grid, cell areas and land mask of a model.

    Parameters
    ----------
    spec
        The model.
    resolution
        Nominal resolution in degrees; ``None`` uses the model's own.

    Returns
    -------
    Grid
        The grid. Regular grids have cell centres at ``-90 + (j + 0.5) * res`` and
        ``(i + 0.5) * res``; the curvilinear grid is the same lattice in logical
        coordinates, with its north pole displaced to 75N, 40W (over Greenland).

    Raises
    ------
    ValueError
        If the resolution is not positive, out of range or does not divide 180 degrees.
    """
    res = spec.resolution if resolution is None else float(resolution)
    _check_resolution(res)
    ny = _n_cells(180.0, res)
    nx = _n_cells(360.0, res)
    lat_edges = -90.0 + res * np.arange(ny + 1)
    lon_edges = res * np.arange(nx + 1)
    lat_1d = 0.5 * (lat_edges[:-1] + lat_edges[1:])
    lon_1d = 0.5 * (lon_edges[:-1] + lon_edges[1:])
    lat_c, lon_c = np.meshgrid(lat_1d, lon_1d, indexing="ij")
    # corners counter-clockwise: (W, S), (E, S), (E, N), (W, N)
    lat_v = np.stack(
        np.broadcast_arrays(
            lat_edges[:-1, None], lat_edges[:-1, None], lat_edges[1:, None], lat_edges[1:, None]
        ),
        axis=-1,
    )
    lat_v = np.broadcast_to(lat_v, (ny, nx, 4)).copy()
    lon_v = np.stack(
        (lon_edges[None, :-1], lon_edges[None, 1:], lon_edges[None, 1:], lon_edges[None, :-1]),
        axis=-1,
    )
    lon_v = np.broadcast_to(lon_v, (ny, nx, 4)).copy()
    if spec.grid_type == "regular":
        band = np.sin(np.deg2rad(lat_edges[1:])) - np.sin(np.deg2rad(lat_edges[:-1]))
        area = EARTH_RADIUS**2 * np.deg2rad(res) * np.broadcast_to(band[:, None], (ny, nx))
        lat_bounds = np.stack((lat_edges[:-1], lat_edges[1:]), axis=-1)
        lon_bounds = np.stack((lon_edges[:-1], lon_edges[1:]), axis=-1)
        return Grid(
            grid_type="regular",
            resolution=res,
            lat=lat_c,
            lon=lon_c,
            lat_vertices=lat_v,
            lon_vertices=lon_v,
            area=np.ascontiguousarray(area),
            land=land_mask(lat_c, lon_c),
            lat_1d=lat_1d,
            lon_1d=lon_1d,
            lat_bounds_1d=lat_bounds,
            lon_bounds_1d=lon_bounds,
        )
    if spec.grid_type != "curvilinear":  # pragma: no cover - guarded by ModelSpec
        msg = f"unknown grid type {spec.grid_type!r}"
        raise ValueError(msg)
    pole = {"pole_lat": 75.0, "pole_lon": 320.0, "start_lat": 30.0}
    lat2, lon2 = _displaced_pole(lat_c, lon_c, **pole)
    lat_v2, lon_v2 = _displaced_pole(lat_v, lon_v, **pole)
    # keep the corners of each cell next to its centre (no jump across 0/360)
    lon_v2 = lon2[..., None] + _wrap180(lon_v2 - lon2[..., None])
    corners = _unit_vectors(lat_v2, lon_v2)
    area = EARTH_RADIUS**2 * (
        _spherical_triangle_area(corners[..., 0, :], corners[..., 1, :], corners[..., 2, :])
        + _spherical_triangle_area(corners[..., 0, :], corners[..., 2, :], corners[..., 3, :])
    )
    return Grid(
        grid_type="curvilinear",
        resolution=res,
        lat=lat2,
        lon=lon2,
        lat_vertices=lat_v2,
        lon_vertices=lon_v2,
        area=area,
        land=land_mask(lat2, lon2),
    )
