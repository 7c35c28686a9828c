"""Round trips of every product: the reader gives back what the writer was given."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from carbon_biomes.core.detection import DetectionSettings, detect_biomes, pool_reference_boxes
from carbon_biomes.core.monthly_regression import RegressionSettings, regress_months
from carbon_biomes.core.regression import BoxRegression
from carbon_biomes.core.tracking import TrackedBiomes
from carbon_biomes.workflow import products
from carbon_biomes.workflow.identity import DatasetIdentity
from carbon_biomes.workflow.inputs import load_dataset_fields
from carbon_biomes.workflow.provenance import ProvenanceLogger
from conftest import TINY_BOX

PRODUCTS = products.PRODUCTS
IDENTITY = DatasetIdentity(alias="SYNTH-ESM-A_r2i1p1f1", dataset="SYNTH-ESM-A", project="CMIP6",
                           exp="historical", ensemble="r2i1p1f1", grid="gn")  # fmt: skip


@pytest.fixture(scope="module")
def computed(input_data):
    """The regression of three months and the detection of the first, computed in memory."""
    fields = load_dataset_fields(IDENTITY, list(input_data.values()))
    settings = RegressionSettings(box_size=TINY_BOX, outlier_filter={"fco2_max": 520.0})
    grid = fields.native_grid(settings.box_size)
    months = ["2009-01", "2009-02", "2009-03"]
    stream = fields.iter_months(["fco2", "sst", "dic", "alk", "ice"], [0, 1, 2])
    regressions = list(regress_months(stream, grid, settings))
    boxes = pool_reference_boxes(regressions[:1], IDENTITY.alias)
    result = detect_biomes(boxes, DetectionSettings(min_biome_size=3, seed=4), IDENTITY.alias)
    return fields, settings, grid, months, regressions, result


@pytest.fixture
def writer(tmp_path):
    cfg = {"work_dir": tmp_path / "work", "plot_dir": tmp_path / "plots"}
    with ProvenanceLogger(tmp_path) as provenance:
        yield products.ProductWriter(cfg, provenance, "test_products.py")


#: Exact on file; the fit statistics are stored in single precision and read back as float64.
EXACT = {"box_id", "lat", "lon", "n"}


def _assert_boxes_equal(a: BoxRegression, b: BoxRegression) -> None:
    for f in dataclasses.fields(BoxRegression):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if not isinstance(x, np.ndarray):
            assert x == y, f.name
        elif f.name in EXACT:
            assert x.dtype == y.dtype and np.array_equal(x, y), f.name
        else:  # single precision on file, float64 again when read
            assert y.dtype == np.float64, f.name
            np.testing.assert_allclose(y, x, rtol=2e-6, atol=1e-30, err_msg=f.name)


def test_monthly_rcs_round_trip(computed, writer):
    fields, settings, _, months, regressions, _ = computed
    path = products.write_monthly_rcs(
        writer, IDENTITY, iter(regressions), months, "360_day", settings, with_ice=True,
        ancestors=fields.ancestors, what="test",
    )  # fmt: skip
    assert path.name == "SYNTH-ESM-A_r2i1p1f1_monthly_rcs.nc"
    rcs = products.read_monthly_rcs(path)
    assert rcs.identity == IDENTITY and rcs.settings == settings
    assert rcs.months == tuple(months) and rcs.calendar == "360_day" and rcs.with_ice
    back = list(rcs.iter_months())
    assert len(back) == 3
    for original, read in zip(regressions, back, strict=True):
        assert read.month == original.month
        _assert_boxes_equal(original.all_boxes, read.all_boxes)
        assert np.array_equal(original.significant, read.significant)
        assert np.array_equal(original.stats.area, read.stats.area)
        for name in ("sst", "ice"):
            np.testing.assert_allclose(getattr(read.stats, name), getattr(original.stats, name),
                                       rtol=2e-6, err_msg=name)  # fmt: skip
        assert (read.n_cells_valid, read.n_cells_outliers) == (
            original.n_cells_valid, original.n_cells_outliers)  # fmt: skip


def test_monthly_rcs_stream_out_of_order_fails_without_a_file(computed, writer):
    fields, settings, _, months, regressions, _ = computed
    with pytest.raises(ValueError, match="2009-02 where 2009-01 was due"):
        products.write_monthly_rcs(
            writer, IDENTITY, iter(regressions[1:]), months, "standard", settings,
            with_ice=True, ancestors=fields.ancestors, what="test",
        )  # fmt: skip
    assert not list(writer.work_dir.glob("*monthly_rcs*"))  # no file that looks complete
    assert not list(writer.work_dir.glob(".*"))  # and no partial one left behind
    assert writer.provenance.records == {}  # and no provenance record of it


def test_native_grid_round_trip(computed, writer):
    fields, _, grid, *_ = computed
    path = products.write_native_grid(writer, IDENTITY, grid, fields.ancestors, "test")
    identity, back = products.read_native_grid(path)
    assert identity == IDENTITY
    for f in dataclasses.fields(grid):
        x, y = getattr(grid, f.name), getattr(back, f.name)
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, y, equal_nan=True), f.name
        else:
            assert x == y, f.name


def test_detected_biomes_round_trip(computed, writer):
    fields, settings, _, _, _, result = computed
    path = products.write_detected_biomes(
        writer, IDENTITY, result, settings, "365_day", "x_monthly_rcs.nc", fields.ancestors, "t"
    )
    back = products.read_detected_biomes(path)
    assert back.identity == IDENTITY and back.months == result.months
    assert back.settings == result.settings and back.regression_settings == settings
    assert back.names == result.names and back.calendar == "365_day"
    order = np.lexsort((result.boxes.box_id, result.boxes.month_of_box))
    assert np.array_equal(back.box_id, result.boxes.box_id[order])
    assert np.array_equal(back.labels, result.labels[order])
    assert back.thresholds == result.thresholds
    assert back.delta_dist_abs == result.delta_dist_abs
    assert back.threshold_source == result.threshold_source
    assert np.array_equal(back.linkage, result.linkage)
    assert np.array_equal(back.mean, result.mean) and np.array_equal(back.std, result.std)
    assert back.cut_nodes == result.cut_nodes and back.merged == result.merged


def test_native_labels_round_trip(computed, writer):
    fields, _, grid, _, _, result = computed
    lattice = result.label_lattice()
    product = PRODUCTS["biomes_native_grid"]
    path = products.write_native_labels(
        writer, product, IDENTITY, grid, result.months, "standard", lattice, result.names,
        "test labels", fields.ancestors, "test",
    )  # fmt: skip
    identity, months, labels, names = products.read_native_labels(path, product)
    assert identity == IDENTITY and months == result.months and names == result.names
    expected = grid.to_native(np.ma.filled(lattice.reshape(1, -1), -1), -1)
    assert np.array_equal(np.ma.filled(labels, -1), expected)
    assert labels.mask[0][~grid.ocean].all()


def test_tracked_biomes_round_trip(writer):
    rng = np.random.default_rng(0)
    shape = (4, 18, 36)
    mask = rng.random(shape) < 0.4
    tracked = TrackedBiomes(
        dataset=IDENTITY.alias,
        months=["2009-01", "2009-02", "2009-03", "2009-04"],
        labels=np.ma.masked_array(rng.integers(1, 5, shape).astype(np.int16), mask),
        probability=np.ma.masked_array(rng.random(shape).astype(np.float32), mask),
        ood=np.ma.masked_array((rng.random(shape) < 0.1).astype(np.int8), mask),
        box_area=np.ma.masked_array(rng.random(shape) * 1e11, mask),
        names={1: "ICE", 2: "SUBTR I", 3: "SUBTR II", 4: "SUBP+UP I"},
        box_size=10.0,
    )
    path = products.write_tracked_biomes(writer, IDENTITY, tracked, "noleap", {}, [], "test")
    back = products.read_tracked_biomes(path)
    assert back.dataset == tracked.dataset and back.months == tracked.months
    assert back.names == tracked.names and back.box_size == tracked.box_size
    for name in ("labels", "probability", "ood", "box_area"):
        a, b = getattr(tracked, name), getattr(back, name)
        assert np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)), name
        assert np.array_equal(a.compressed(), b.compressed()), name
    with netCDF4.Dataset(path) as nc:
        assert nc.variables["time"].calendar == "noleap"


@pytest.mark.parametrize("name", ["biome_area", "detection_metrics", "biome_centroids"])
def test_tables_round_trip(writer, name):
    product = PRODUCTS[name]
    row = [1.0 / 3.0] * len(product.columns)
    row[:4] = list(IDENTITY.table_columns().values())
    [path] = writer.write(product, IDENTITY, [row], [], "test")
    [back] = products.read_table(path, product)
    assert list(back) == list(product.columns)
    assert float(back[product.columns[-1]]) == 1.0 / 3.0  # full precision
    assert back["dataset"] == IDENTITY.alias and back["ensemble"] == "r2i1p1f1"


def test_reader_refuses_another_product_and_another_version(computed, writer, tmp_path):
    fields, _, grid, *_ = computed
    path = products.write_native_grid(writer, IDENTITY, grid, fields.ancestors, "test")
    with pytest.raises(products.ProductError, match="is not a carbon_biomes.monthly_rcs file"):
        products.read_monthly_rcs(path)
    with netCDF4.Dataset(path, "a") as nc:
        nc.product_version = np.int32(99)
    with pytest.raises(products.ProductError, match="format version 99"):
        products.read_native_grid(path)


def test_every_netcdf_product_is_declared_with_a_reader():
    readers = {
        "monthly_rcs": products.read_monthly_rcs, "native_grid": products.read_native_grid,
        "biomes": products.read_detected_biomes, "biomes_native_grid": products.read_native_labels,
        "tracked_biomes": products.read_tracked_biomes,
        "tracked_biomes_native_grid": products.read_native_labels,
        "coverage": products.read_coverage, "frequency_maps": products.read_frequency_maps,
        "frequency_maps_native_grid": products.read_frequency_maps,
        "rc_trends": products.read_rc_trends,
        "common_biomes": products.read_tracked_biomes,  # with product=PRODUCTS["common_biomes"]
        "comparison_agreement": products.read_agreement_map,
    }  # fmt: skip
    declared = {name for name, p in PRODUCTS.items() if p.kind == "netcdf"}
    assert declared == set(readers)
    assert all(callable(reader) for reader in readers.values())
    assert all(p.caption.count("{what}") == 1 for p in PRODUCTS.values())


def test_provenance_is_recorded_only_for_complete_files(computed, tmp_path):
    fields, settings, _, months, regressions, _ = computed
    cfg = {"work_dir": tmp_path / "work", "plot_dir": tmp_path / "plots"}
    with ProvenanceLogger(tmp_path) as provenance:
        writer = products.ProductWriter(cfg, provenance, "test")
        with pytest.raises(ValueError):
            products.write_monthly_rcs(writer, IDENTITY, iter(regressions[:2]), months,
                                       "standard", settings, with_ice=True, ancestors=[],
                                       what="t")  # fmt: skip
    recorded = (tmp_path / "diagnostic_provenance.yml").read_text()
    assert "monthly_rcs" not in recorded
    assert not list(Path(cfg["work_dir"]).glob("*.nc"))


def test_chunk_caches_are_bounded_when_products_are_written_and_read(computed, writer, tmp_path):
    """netCDF's default cache keeps up to 1000 chunks (64 MiB) of every variable: a stream of
    decades of months through a product of twenty variables would keep them all."""
    from carbon_biomes.workflow.netcdf import CHUNK_CACHE_CHUNKS, NetcdfFile, Variable, open_netcdf

    fields, settings, _, months, regressions, _ = computed
    path = products.write_monthly_rcs(
        writer, IDENTITY, iter(regressions), months, "standard", settings, with_ice=True,
        ancestors=fields.ancestors, what="test",
    )  # fmt: skip

    def chunk_bytes(var):
        return int(np.prod(var.chunking())) * var.dtype.itemsize

    with netCDF4.Dataset(path) as plain:  # the library default, for comparison
        assert plain.variables["rc_sst"].get_var_chunk_cache()[0] >= 2**24
    with open_netcdf(path) as nc:
        chunked = [v for v in nc.variables.values() if v.chunking() != "contiguous"]
        assert {"rc_sst", "rc_dic", "rc_alk", "significant"} <= {v.name for v in chunked}
        for var in chunked:
            cache = var.get_var_chunk_cache()[0]
            assert cache <= max(CHUNK_CACHE_CHUNKS * chunk_bytes(var), 2**16), var.name

    with NetcdfFile(tmp_path / "cache.nc", {}) as file:
        file.time_axis(months, "standard")
        file.nc.createDimension("y", 300)
        file.nc.createDimension("x", 400)
        var = file.define(Variable("field", ("time", "y", "x"), np.float32, "a field", "1",
                                   np.float32(1e20)))  # fmt: skip
        assert var.chunking() == [1, 300, 400]
        assert var.get_var_chunk_cache()[0] == CHUNK_CACHE_CHUNKS * 300 * 400 * 4


def test_free_heap_memory_is_returned_between_months():
    import sys

    from carbon_biomes.workflow import memory

    if sys.platform.startswith("linux"):
        assert memory._malloc_trim() is not None  # glibc
    blocks = [np.ones(2**17) for _ in range(64)]  # 64 MiB in 1 MiB arrays, then freed
    del blocks
    assert isinstance(memory.release_free_memory(), bool)
