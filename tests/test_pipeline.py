"""The detection and tracking scripts' ``main(cfg)`` on generated files, and their input checks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import iris
import numpy as np
import pytest

from carbon_biomes.detection import detect_biomes
from carbon_biomes.diagnostic import DiagnosticError
from carbon_biomes.inputs import load_dataset_fields
from carbon_biomes.provenance import missing_records
from carbon_biomes.sample_data import generate_sample_data
from carbon_biomes.settings import DetectionSettings

SCRIPTS = Path(__file__).resolve().parent.parent / "diag_scripts" / "carbon_biomes"
MODEL = "SYNTH-ESM-A"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def input_data(tmp_path_factory):
    """Metadata entries, as ESMValCore would pass them, of one tiny generated model."""
    root = tmp_path_factory.mktemp("data")
    generate_sample_data(root, models=[MODEL], years=(2009, 2009), resolution=2.0)
    entries = {}
    for path in sorted(root.rglob("*.nc")):
        short_name, mip, dataset = path.name.split("_")[:3]
        entries[str(path)] = {
            "filename": str(path), "short_name": short_name, "mip": mip, "dataset": dataset,
        }  # fmt: skip
    return entries


def _cfg(tmp_path: Path, name: str, input_data: dict, **options) -> dict:
    cfg = {
        "run_dir": str(tmp_path / name / "run"),
        "work_dir": str(tmp_path / name / "work"),
        "plot_dir": str(tmp_path / name / "plots"),
        "input_data": input_data,
        "output_file_type": "png",
        **options,
    }
    for key in ("run_dir", "work_dir", "plot_dir"):
        Path(cfg[key]).mkdir(parents=True)
    return cfg


def test_units_are_converted_and_grid_is_native(input_data):
    fields = load_dataset_fields(MODEL, list(input_data.values()))
    month = fields.month(0)
    assert str(fields.cubes["fco2"].units) == "uatm"
    fco2 = np.ma.compressed(month["fco2"])
    assert 150 < np.median(fco2) < 500  # µatm, not Pa (which would be ~40)
    assert 1700 < np.median(np.ma.compressed(month["dic"])) < 2400  # mmol m-3
    assert fields.latitude.ndim == 1 and fields.area is not None
    assert fields.months[0] == "2009-01" and len(fields.months) == 12


def test_disagreeing_grids_name_dataset_and_variables(input_data, tmp_path):
    entries = list(input_data.values())
    talkos = next(e for e in entries if e["short_name"] == "talkos")
    cube = iris.load_cube(talkos["filename"])
    bad = tmp_path / "talkos_bad.nc"
    iris.save(cube[:, ::2, :], bad)
    changed = [e for e in entries if e is not talkos] + [dict(talkos, filename=str(bad))]
    with pytest.raises(DiagnosticError, match=rf"{MODEL}: the grids of tos .* and talkos"):
        load_dataset_fields(MODEL, changed)


def test_missing_variable_is_named(input_data):
    entries = [e for e in input_data.values() if e["short_name"] != "dissicos"]
    with pytest.raises(DiagnosticError, match=rf"{MODEL}: required variable dissicos"):
        load_dataset_fields(MODEL, entries)


def test_too_few_significant_boxes_names_dataset_and_month(input_data):
    fields = load_dataset_fields(MODEL, list(input_data.values()))
    # a 10° box of a 2° grid holds at most 25 cells: none reaches min_points
    settings = DetectionSettings(box_size=10.0, min_points=30, reference_months=("2009-04",))
    with pytest.raises(DiagnosticError, match=rf"{MODEL} 2009-04: only \d+ of \d+ boxes"):
        detect_biomes(fields, settings)


def test_detection_finds_coherent_biomes(input_data):
    fields = load_dataset_fields(MODEL, list(input_data.values()))
    result = detect_biomes(fields, DetectionSettings(box_size=10.0))
    assert result.months == ("2009-01",)
    assert 4 <= result.n_biomes <= 12
    assert set(np.unique(result.labels)) == set(range(1, result.n_biomes + 1))
    assert min(np.bincount(result.labels)[1:]) >= result.settings.min_biome_size
    # the thermally driven family sits at lower latitudes than the DIC-driven one
    subtropical = [k for k, v in result.names.items() if v.startswith("SUBTR")]
    subpolar = [k for k, v in result.names.items() if v.startswith("SUBP")]
    assert subtropical and subpolar
    lat_of = {k: np.mean(np.abs(result.lat[result.labels == k])) for k in result.names}
    assert max(lat_of[k] for k in subtropical) < max(lat_of[k] for k in subpolar)


@pytest.mark.slow
def test_scripts_write_complete_reproducible_outputs(input_data, tmp_path):
    detect = _script("detect_biomes")
    track = _script("track_biomes")
    label_files = []
    for run in ("first", "second"):
        cfg = _cfg(tmp_path / run, "detection", input_data, box_size=10.0)
        detect.main(cfg)
        assert (
            missing_records(
                Path(cfg["run_dir"]) / "diagnostic_provenance.yml", cfg["work_dir"], cfg["plot_dir"]
            )
            == []
        )
        tcfg = _cfg(
            tmp_path / run, "tracking", input_data, epochs=10, input_files=[cfg["work_dir"]]
        )
        track.main(tcfg)
        assert (
            missing_records(
                Path(tcfg["run_dir"]) / "diagnostic_provenance.yml",
                tcfg["work_dir"],
                tcfg["plot_dir"],
            )
            == []
        )
        label_files.append(next(Path(tcfg["work_dir"]).glob(f"{MODEL}_*_tracked_biomes.nc")))
    first, second = (iris.load(path) for path in label_files)
    for name in ("biome", "biome_probability", "out_of_distribution"):
        a = first.extract_cube(iris.NameConstraint(var_name=name)).data
        b = second.extract_cube(iris.NameConstraint(var_name=name)).data
        assert np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)), name
        assert np.array_equal(np.ma.filled(a, -9), np.ma.filled(b, -9)), name
    labels = first.extract_cube(iris.NameConstraint(var_name="biome"))
    assert labels.shape[0] == 12
    assert labels.attributes["flag_meanings"]


def test_settings_errors_reach_the_user(input_data, tmp_path):
    detect = _script("detect_biomes")
    with pytest.raises(ValueError, match="unknown setting"):
        detect.main(_cfg(tmp_path, "detection", input_data, box_sizes=3))


def test_month_without_usable_boxes_gets_missing_labels(input_data, caplog):
    from carbon_biomes.tracking import BiomeClassifier, TrackingSettings
    from carbon_biomes.tracking_pipeline import ReferenceBiomes, track_dataset

    fields = load_dataset_fields(MODEL, list(input_data.values()))
    result = detect_biomes(fields, DetectionSettings(box_size=10.0))
    classifier = BiomeClassifier(TrackingSettings(epochs=3, hidden_units=(16,))).fit(
        result.features, result.labels
    )
    reference = ReferenceBiomes(
        dataset=MODEL, months=result.months, features=result.features, labels=result.labels,
        box_id=result.box_id, month_of_box=result.month_of_box, names=result.names,
        settings=result.settings, files=(),
    )  # fmt: skip
    original = fields.month

    def month_with_a_gap(index, names=None):
        month = original(index, names)
        if index == 3:
            for name in month.fields:
                month.fields[name] = np.ma.masked_all(month.fields[name].shape)
        return month

    fields.month = month_with_a_gap
    with caplog.at_level("WARNING"):
        tracked = track_dataset(fields, classifier, reference)
    assert tracked.labels[3].mask.all()
    assert not tracked.labels[2].mask.all() and not tracked.labels[4].mask.all()
    assert f"{MODEL} 2009-04: no box passed" in caplog.text


def test_pooled_reference_months_are_clustered_together(input_data, tmp_path):
    from carbon_biomes.tracking_pipeline import read_reference_biomes

    detect = _script("detect_biomes")
    cfg = _cfg(
        tmp_path, "detection", input_data, box_size=10.0, reference_months=["2009-01", "2009-07"]
    )
    detect.main(cfg)
    reference = read_reference_biomes(MODEL, [cfg["work_dir"]])
    assert reference.months == ("2009-01", "2009-07")
    per_month = np.bincount(reference.month_of_box)
    assert per_month.size == 2 and per_month.min() > 50
    # one label set for both months, and the January and July boxes differ in their RCs
    assert set(np.unique(reference.labels)) == set(reference.names)
    january = reference.features[reference.month_of_box == 0]
    july = reference.features[reference.month_of_box == 1]
    assert not np.allclose(np.median(january, axis=0), np.median(july, axis=0))


def test_wrong_units_are_caught(input_data, tmp_path):
    entries = list(input_data.values())
    dissicos = next(e for e in entries if e["short_name"] == "dissicos")
    cube = iris.load_cube(dissicos["filename"])
    cube.units = "mmol m-3"  # values are in mol m-3: a thousand times too small now
    bad = tmp_path / "dissicos_bad_units.nc"
    iris.save(cube, bad)
    changed = [e for e in entries if e is not dissicos] + [dict(dissicos, filename=str(bad))]
    with pytest.raises(DiagnosticError, match=rf"{MODEL}: variable dissicos has a median of"):
        load_dataset_fields(MODEL, changed)
