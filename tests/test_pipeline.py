"""The three scripts' ``main(cfg)`` on generated files: inputs, stage contract, reproducibility."""

from __future__ import annotations

from pathlib import Path

import iris
import numpy as np
import pytest

from carbon_biomes.core.classifier import BiomeClassifier, ClassifierSettings
from carbon_biomes.core.detection import DetectionSettings, detect_biomes, pool_reference_boxes
from carbon_biomes.core.errors import DiagnosticError
from carbon_biomes.core.monthly_regression import RegressionSettings, regress_months
from carbon_biomes.core.regression import box_centres
from carbon_biomes.core.tracking import track_months
from carbon_biomes.workflow import products
from carbon_biomes.workflow.identity import DatasetIdentity
from carbon_biomes.workflow.inputs import load_dataset_fields
from carbon_biomes.workflow.provenance import missing_records
from conftest import TINY_BOX, load_script, metadata_entries, script_cfg

MODEL = "SYNTH-ESM-A"
IDENTITY = DatasetIdentity(alias=MODEL, dataset=MODEL, project="CMIP6", exp="historical",
                           ensemble="r1i1p1f1", grid="gn")  # fmt: skip
PRODUCTS = products.PRODUCTS


def _work(cfg: dict) -> Path:
    return Path(cfg["work_dir"])


def test_units_are_converted_and_grid_is_native(input_data):
    fields = load_dataset_fields(IDENTITY, list(input_data.values()))
    month = fields.month(0)
    assert str(fields.cubes["fco2"].units) == "uatm"
    fco2 = np.ma.compressed(month["fco2"])
    assert 150 < np.median(fco2) < 500  # µatm, not Pa (which would be ~40)
    assert 1700 < np.median(np.ma.compressed(month["dic"])) < 2400  # mmol m-3
    assert fields.latitude.ndim == 1 and fields.area is not None
    assert fields.months[0] == "2009-01" and len(fields.months) == 12
    grid = fields.native_grid(TINY_BOX)
    assert grid.cell_box.shape == grid.ocean.shape == fields.area.shape
    assert (grid.cell_box[~grid.ocean] == -1).all() and (grid.cell_box[grid.ocean] >= 0).all()


def test_disagreeing_grids_name_dataset_and_variables(input_data, tmp_path):
    entries = list(input_data.values())
    talkos = next(e for e in entries if e["short_name"] == "talkos")
    cube = iris.load_cube(talkos["filename"])
    bad = tmp_path / "talkos_bad.nc"
    iris.save(cube[:, ::2, :], bad)
    changed = [e for e in entries if e is not talkos] + [dict(talkos, filename=str(bad))]
    with pytest.raises(DiagnosticError, match=rf"{MODEL}: the grids of tos .* and talkos"):
        load_dataset_fields(IDENTITY, changed)


def test_missing_variable_is_named(input_data):
    entries = [e for e in input_data.values() if e["short_name"] != "dissicos"]
    with pytest.raises(DiagnosticError, match=rf"{MODEL}: required variable dissicos"):
        load_dataset_fields(IDENTITY, entries)


def test_wrong_units_are_caught(input_data, tmp_path):
    entries = list(input_data.values())
    dissicos = next(e for e in entries if e["short_name"] == "dissicos")
    cube = iris.load_cube(dissicos["filename"])
    cube.units = "mmol m-3"  # values are in mol m-3: a thousand times too small now
    bad = tmp_path / "dissicos_bad_units.nc"
    iris.save(cube, bad)
    changed = [e for e in entries if e is not dissicos] + [dict(dissicos, filename=str(bad))]
    with pytest.raises(DiagnosticError, match=rf"{MODEL}: variable dissicos has a median of"):
        load_dataset_fields(IDENTITY, changed)


def _regressions(input_data, months=None, **settings):
    fields = load_dataset_fields(IDENTITY, list(input_data.values()))
    regression = RegressionSettings(box_size=TINY_BOX, **settings)
    grid = fields.native_grid(regression.box_size)
    indices = None if months is None else [fields.month_index(m) for m in months]
    return list(regress_months(fields.iter_months(None, indices), grid, regression))


def test_too_few_significant_boxes_names_dataset_and_month(input_data):
    # a 10° box of a 2° grid holds at most 25 cells: none reaches min_points
    regressions = _regressions(input_data, ["2009-04"], min_points=30)
    with pytest.raises(DiagnosticError, match=rf"{MODEL} 2009-04: only 0 of 0 boxes"):
        pool_reference_boxes(regressions, MODEL)


def test_detection_finds_coherent_biomes(pipeline_run):
    detected = products.read_detected_biomes(
        _work(pipeline_run["detection"]) / f"{MODEL}_biomes.nc"
    )
    assert detected.months == ("2009-01",)
    assert set(np.unique(detected.labels)) == set(detected.names)
    assert min(np.bincount(detected.labels)[1:]) >= detected.settings.min_biome_size
    # the thermally driven family sits at lower latitudes than the DIC-driven one
    subtropical = [k for k, v in detected.names.items() if v.startswith("SUBTR")]
    subpolar = [k for k, v in detected.names.items() if v.startswith("SUBP")]
    assert subtropical and subpolar
    lat, _ = box_centres(detected.box_id, detected.regression_settings.box_size)
    lat_of = {k: np.mean(np.abs(lat[detected.labels == k])) for k in detected.names}
    assert max(lat_of[k] for k in subtropical) < max(lat_of[k] for k in subpolar)


def test_every_output_has_provenance(pipeline_run):
    for cfg in pipeline_run.values():
        provenance = Path(cfg["run_dir"]) / "diagnostic_provenance.yml"
        assert missing_records(provenance, cfg["work_dir"], cfg["plot_dir"]) == []


def test_monthly_rcs_exist_for_every_dataset_and_month(pipeline_run):
    work = _work(pipeline_run["regression"])
    for model in ("SYNTH-ESM-A", "SYNTH-ESM-B"):
        rcs = products.read_monthly_rcs(work / f"{model}_monthly_rcs.nc")
        assert rcs.identity.alias == model
        assert rcs.months == tuple(f"2009-{m:02d}" for m in range(1, 13))
        assert all(reg.n_significant > 30 for reg in rcs.iter_months())


def test_later_stages_read_the_rcs_and_never_regress(pipeline_run):
    """The regression ran once, in its own stage; the later stages read its product."""
    assert pipeline_run.regress_calls == {"regression": 24, "detection": 0, "tracking": 0,
                                          "analysis": 0}  # fmt: skip
    cfgs = pipeline_run
    rcs = products.read_monthly_rcs(_work(cfgs["regression"]) / f"{MODEL}_monthly_rcs.nc")
    detected = products.read_detected_biomes(_work(cfgs["detection"]) / f"{MODEL}_biomes.nc")
    tracked = products.read_tracked_biomes(_work(cfgs["tracking"]) / f"{MODEL}_tracked_biomes.nc")
    # one precision: detection clustered, and tracking trained on, the stored RCs
    reference = rcs.regressions(detected.months)[0].kept
    features = detected.features(rcs)
    assert features.dtype == np.float64
    position = np.searchsorted(reference.box_id, detected.box_id)
    assert np.array_equal(features, reference.slopes[position])
    # in the reference month every significant box is tracked, since its RCs are the same numbers
    t = tracked.months.index(detected.months[0])
    labelled = np.flatnonzero(~np.ma.getmaskarray(tracked.labels[t]).reshape(-1))
    assert np.array_equal(labelled, reference.box_id)


def test_month_without_usable_boxes_gets_missing_labels(input_data, caplog):
    regressions = _regressions(input_data)
    boxes = pool_reference_boxes(regressions[:1], MODEL)
    result = detect_biomes(boxes, DetectionSettings(), MODEL)
    classifier = BiomeClassifier(ClassifierSettings(epochs=3, hidden_units=(16,)))
    classifier.fit(boxes.features, result.labels)
    empty = regressions[3]
    regressions[3] = type(empty)(
        month=empty.month, all_boxes=empty.all_boxes,
        significant=np.zeros_like(empty.significant), stats=empty.stats,
        n_cells_valid=empty.n_cells_valid, n_cells_outliers=empty.n_cells_outliers,
    )  # fmt: skip
    with caplog.at_level("WARNING"):
        tracked = track_months(regressions, classifier, result.names, TINY_BOX, dataset=MODEL)
    assert tracked.labels[3].mask.all()
    assert not tracked.labels[2].mask.all() and not tracked.labels[4].mask.all()
    assert f"{MODEL} 2009-04: no box passed" in caplog.text


def test_pooled_reference_months_are_clustered_together(pipeline_run, tmp_path):
    cfg = script_cfg(tmp_path, "detection", input_files=[pipeline_run["regression"]["work_dir"]],
                     reference_months=["2009-01", "2009-07"])  # fmt: skip
    load_script("detect_biomes").main(cfg)
    detected = products.read_detected_biomes(_work(cfg) / f"{MODEL}_biomes.nc")
    assert detected.months == ("2009-01", "2009-07")
    per_month = np.bincount(detected.month_of_box)
    assert per_month.size == 2 and per_month.min() > 50
    # one label set for both months, and the January and July boxes differ in their RCs
    assert set(np.unique(detected.labels)) == set(detected.names)
    rcs = products.read_monthly_rcs(
        Path(pipeline_run["regression"]["work_dir"]) / f"{MODEL}_monthly_rcs.nc"
    )
    features = detected.features(rcs)
    january, july = features[detected.month_of_box == 0], features[detected.month_of_box == 1]
    assert not np.allclose(np.median(january, axis=0), np.median(july, axis=0))


def test_reference_month_outside_the_rcs_is_named(pipeline_run, tmp_path):
    cfg = script_cfg(tmp_path, "detection", input_files=[pipeline_run["regression"]["work_dir"]],
                     reference_months=["1990-01"])  # fmt: skip
    with pytest.raises(DiagnosticError, match=r"SYNTH-ESM-A: month 1990-01 is not in the monthly"):
        load_script("detect_biomes").main(cfg)


def test_detection_without_regression_ancestor_says_what_to_do(tmp_path):
    cfg = script_cfg(tmp_path, "detection", input_files=[str(tmp_path)])
    with pytest.raises(products.ProductError, match="_monthly_rcs.nc.*ancestors"):
        load_script("detect_biomes").main(cfg)


def test_settings_errors_reach_the_user(input_data, tmp_path):
    with pytest.raises(ValueError, match="unknown setting"):
        load_script("regress_boxes").main(script_cfg(tmp_path, "r", input_data, box_sizes=3))


@pytest.mark.slow
def test_two_runs_give_identical_outputs(sample_root, run_pipeline, pipeline_run):
    second = run_pipeline(metadata_entries(sample_root), "second")
    for model in ("SYNTH-ESM-A", "SYNTH-ESM-B"):
        name = f"{model}_tracked_biomes.nc"
        a = products.read_tracked_biomes(_work(pipeline_run["tracking"]) / name)
        b = products.read_tracked_biomes(_work(second["tracking"]) / name)
        assert a.labels.count() > 1000
        for field in ("labels", "probability", "ood", "box_area"):
            x, y = getattr(a, field), getattr(b, field)
            assert np.array_equal(np.ma.getmaskarray(x), np.ma.getmaskarray(y)), field
            assert np.array_equal(np.ma.filled(x, -9), np.ma.filled(y, -9)), field
    for table in ("tracking_metrics.csv",):
        first = (_work(pipeline_run["tracking"]) / table).read_text().splitlines()
        again = (_work(second["tracking"]) / table).read_text().splitlines()
        skip = ("training_seconds",)
        assert [r for r in first if not any(s in r for s in skip)] == [
            r for r in again if not any(s in r for s in skip)
        ]


def test_streamed_months_in_blocks_equal_single_reads(input_data, monkeypatch):
    from carbon_biomes.workflow import inputs

    fields = load_dataset_fields(IDENTITY, list(input_data.values()))
    month_bytes = sum(fields.cubes[n].dtype.itemsize * fields.area.size for n in ("fco2", "sst"))
    monkeypatch.setattr(inputs, "BLOCK_BYTES", 5 * month_bytes)
    assert fields._block_length(["fco2", "sst"]) == 5
    streamed = list(fields.iter_months(["fco2", "sst"], [0, 1, 2, 3, 7, 8, 11]))
    assert [m.label for m in streamed] == [fields.months[i] for i in (0, 1, 2, 3, 7, 8, 11)]
    for month, index in zip(streamed, (0, 1, 2, 3, 7, 8, 11), strict=True):
        single = fields.month(index, ["fco2", "sst"])
        for name in ("fco2", "sst"):
            assert np.array_equal(month[name].mask, single[name].mask)
            assert np.array_equal(month[name].filled(0), single[name].filled(0))
