"""Tests of the provenance helper and the diagnostic-script contract."""

from pathlib import Path

import pytest
import yaml

from carbon_biomes.workflow.diagnostic import (
    DiagnosticError,
    group_metadata,
    load_settings,
    run_diagnostic,
    select_metadata,
)
from carbon_biomes.workflow.provenance import ProvenanceLogger, missing_records, provenance_record


def test_record_has_plural_keys_and_ancestor_list(tmp_path):
    record = provenance_record(
        "Map of biomes;  SYNTH-ESM-A,\n 2009-01.",
        [tmp_path / "b.nc", tmp_path / "a.nc", tmp_path / "a.nc"],
        plot_types=["geo"],
        statistics=["clustering"],
    )
    assert record["caption"] == "Map of biomes; SYNTH-ESM-A, 2009-01."
    assert record["ancestors"] == [str(tmp_path / "a.nc"), str(tmp_path / "b.nc")]
    for key in ("authors", "references", "domains", "realms", "themes", "plot_types"):
        assert isinstance(record[key], list) and record[key], key
    assert record["references"] == ["mohanty25os"]


@pytest.mark.parametrize("key", ["domain", "plot_type", "author", "reference"])
def test_singular_keys_are_refused(key):
    with pytest.raises(ValueError, match="ignored by ESMValCore"):
        provenance_record("caption", [], **{key: ["x"]})


def test_empty_caption_refused():
    with pytest.raises(ValueError, match="caption"):
        provenance_record("  ", [])


def test_tags_exist_in_config_references():
    """Every default tag is declared in config-references.yml (ESMValCore fails otherwise)."""
    root = Path(__file__).resolve().parent.parent
    tags = yaml.safe_load((root / "config-references.yml").read_text(encoding="utf-8"))
    record = provenance_record("c", [], plot_types=["geo"], statistics=["clustering"])
    for section in ("authors", "domains", "realms", "themes", "plot_types", "statistics"):
        for tag in record[section]:
            assert tag in tags[section], (section, tag)
    for reference in record["references"]:
        assert (root / "references" / f"{reference}.bibtex").is_file()


def test_logger_writes_yaml_and_refuses_missing_or_duplicate(tmp_path):
    out = tmp_path / "work" / "x.nc"
    out.parent.mkdir()
    out.write_text("data")
    with ProvenanceLogger(tmp_path) as provenance:
        provenance.log(out, provenance_record("X of Y", ["in.nc"]))
        with pytest.raises(FileNotFoundError):
            provenance.log(tmp_path / "work" / "missing.nc", provenance_record("c", []))
        with pytest.raises(ValueError, match="already"):
            provenance.log(out, provenance_record("again", []))
    written = yaml.safe_load((tmp_path / "diagnostic_provenance.yml").read_text())
    assert list(written) == [str(out.resolve())]
    assert written[str(out.resolve())]["ancestors"] == ["in.nc"]
    (tmp_path / "work" / "orphan.png").write_text("png")
    missing = missing_records(tmp_path / "diagnostic_provenance.yml", tmp_path / "work")
    assert missing == [tmp_path / "work" / "orphan.png"]


def _write_settings(tmp_path, extra=None):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    metadata = {
        str(tmp_path / "tos_A.nc"): {"dataset": "A", "short_name": "tos", "alias": "A"},
        str(tmp_path / "spco2_A.nc"): {"dataset": "A", "short_name": "spco2", "alias": "A"},
        str(tmp_path / "tos_B.nc"): {"dataset": "B", "short_name": "tos", "alias": "B"},
    }
    (tmp_path / "preproc").mkdir()
    (tmp_path / "preproc" / "metadata.yml").write_text(yaml.safe_dump(metadata))
    settings = {
        "run_dir": str(run_dir),
        "work_dir": str(tmp_path / "work"),
        "plot_dir": str(tmp_path / "plots"),
        "input_files": [str(tmp_path / "preproc" / "metadata.yml"), str(tmp_path / "other_work")],
        "log_level": "info",
        **(extra or {}),
    }
    path = run_dir / "settings.yml"
    path.write_text(yaml.safe_dump(settings))
    return path


def test_settings_metadata_grouping(tmp_path):
    cfg = load_settings(_write_settings(tmp_path, {"box_size": 4}))
    assert cfg["box_size"] == 4
    assert len(cfg["input_data"]) == 3
    groups = group_metadata(cfg["input_data"].values(), "dataset", sort=True)
    assert list(groups) == ["A", "B"]
    assert sorted(item["short_name"] for item in groups["A"]) == ["spco2", "tos"]
    reverse = dict(reversed(list(cfg["input_data"].items())))
    sorted_groups = group_metadata(reverse.values(), "dataset", sort="short_name")
    assert [item["short_name"] for item in sorted_groups["A"]] == ["spco2", "tos"]
    assert list(group_metadata(reverse.values(), "dataset")) == ["B", "A"]
    assert (
        select_metadata(cfg["input_data"].values(), dataset="A", short_name="tos")[0]["alias"]
        == "A"
    )
    assert select_metadata(cfg["input_data"].values(), short_name="sos") == []


def test_run_diagnostic_creates_dirs_and_refuses_old_output(tmp_path):
    path = _write_settings(tmp_path)
    with run_diagnostic(path) as cfg:
        assert Path(cfg["work_dir"]).is_dir() and Path(cfg["plot_dir"]).is_dir()
    (Path(cfg["run_dir"]) / "diagnostic_provenance.yml").write_text("{}")
    with pytest.raises(DiagnosticError, match="earlier run"), run_diagnostic(path):
        pass
