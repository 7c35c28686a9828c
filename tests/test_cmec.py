"""The comparison metrics as a CMEC metric bundle, validated with climate-ref's own model.

climate-ref-core is a test dependency: ``carbon_biomes.workflow.cmec`` writes plain JSON, and
these tests check it with ``climate_ref_core.pycmec.metric.CMECMetric``, the model with which
the CMIP Rapid Evaluation Framework reads the bundles of its providers.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from climate_ref_core.exceptions import ResultValidationError
from climate_ref_core.pycmec import BUNDLED_AFT_CV
from climate_ref_core.pycmec.controlled_vocabulary import CV
from climate_ref_core.pycmec.metric import CMECMetric

from carbon_biomes.workflow.cmec import ALL_BIOMES, metric_bundle, write_metric_bundle

REPOSITORY = Path(__file__).resolve().parent.parent
DATASETS = {  # alias -> (model, ensemble, exp)
    "MODEL-A": ("MODEL-A", "r1i1p1f1", "historical"),
    "MODEL-B_r2i1p1f1": ("MODEL-B", "r2i1p1f1", "historical"),
    "OBS-REF": ("PRODUCT-C+PRODUCT-S", "", ""),
}
SUMMARIES = ("MultiModelMean", "MultiModelSpread")
REGIONS = ("Global", "North Atlantic")
BIOMES = ("SUBTR I", "SP II")


def _row(dataset, region, biome, metric, value, units="1"):
    model, ensemble, exp = DATASETS.get(dataset, ("", "", ""))
    return {"dataset": dataset, "model": model, "ensemble": ensemble, "exp": exp,
            "region": region, "biome": biome, "metric": metric, "value": value,
            "units": units}  # fmt: skip


def _rows() -> list[dict]:
    """Rows as compare_biomes.py writes them: whole-map metrics (biome ""), per-biome metrics,
    NaN values (a spread of one model, an undefined kappa), values as text (read back from the
    CSV table), and a biome that one dataset lacks in one region."""
    rows = []
    for d, dataset in enumerate([*DATASETS, *SUMMARIES]):
        for r, region in enumerate(REGIONS):
            base = 0.1 * d + 0.01 * r
            rows.append(_row(dataset, region, "", "agreement", 0.7 + base))
            kappa = float("nan") if (dataset, region) == ("MODEL-A", "North Atlantic") else base
            rows.append(_row(dataset, region, "", "kappa", kappa))
            for b, biome in enumerate(BIOMES):
                if (dataset, region, biome) == ("OBS-REF", "North Atlantic", "SP II"):
                    continue  # the biome does not occur there
                rows.append(_row(dataset, region, biome, "area_fraction",
                                 str(20.0 + 10 * b + base), "%"))  # fmt: skip
                trend = "nan" if dataset == "MultiModelSpread" and b == 1 else -0.5 * b + base
                rows.append(_row(dataset, region, biome, "coverage_trend", trend,
                                 "% (10 year)-1"))  # fmt: skip
    rows.append(_row("MODEL-A", "Global", "SUBTR I", "centroid_distance", 1))  # an int
    rows.append(_row("MODEL-B_r2i1p1f1", "Global", "SUBTR I", "centroid_distance", None))
    return rows


def _finite(rows):
    for row in rows:
        value = row["value"]
        if value is not None and value != "" and math.isfinite(float(value)):
            yield row


def test_the_bundle_validates_with_climate_ref():
    bundle = metric_bundle(_rows(), provenance={"recipe": "recipe_test.yml"})
    metric = CMECMetric.model_validate(bundle)
    assert metric.DIMENSIONS["json_structure"] == ["source_id", "region", "biome", "metric"]
    assert set(metric.DIMENSIONS["source_id"]) == {*DATASETS, *SUMMARIES}
    assert set(metric.DIMENSIONS["biome"]) == {ALL_BIOMES, *BIOMES}
    assert metric.DIMENSIONS["metric"]["area_fraction"]["units"] == "%"
    assert metric.DIMENSIONS["metric"]["coverage_trend"]["units"] == "% (10 year)-1"
    assert metric.DIMENSIONS["source_id"]["MODEL-B_r2i1p1f1"]["ensemble"] == "r2i1p1f1"
    assert "long_name" in metric.DIMENSIONS["source_id"]["MultiModelSpread"]
    assert metric.PROVENANCE["recipe"] == "recipe_test.yml"
    assert metric.DISCLAIMER and metric.NOTES["omitted_values"] == 4
    # the JSON text validates too (as the framework reads it from disk)
    CMECMetric.model_validate_json(json.dumps(bundle, allow_nan=False))


def test_every_finite_value_round_trips_and_nan_is_omitted():
    rows = _rows()
    bundle = metric_bundle(rows)
    results = bundle["RESULTS"]
    finite = list(_finite(rows))
    for row in finite:
        biome = row["biome"] or ALL_BIOMES
        assert results[row["dataset"]][row["region"]][biome][row["metric"]] == float(row["value"])
    for row in rows:
        if row not in finite:
            assert row["metric"] not in results[row["dataset"]][row["region"]][
                row["biome"] or ALL_BIOMES]  # fmt: skip
    # nothing else: the framework's reader yields exactly the finite rows
    values = list(CMECMetric.model_validate(bundle).iter_results())
    assert len(values) == len(finite)
    assert {(v.dimensions["source_id"], v.dimensions["region"], v.dimensions["biome"],
             v.dimensions["metric"], v.value) for v in values} == {
        (r["dataset"], r["region"], r["biome"] or ALL_BIOMES, r["metric"], float(r["value"]))
        for r in finite
    }  # fmt: skip
    # strict JSON: no NaN/Infinity constants anywhere
    constants = []
    json.loads(json.dumps(bundle), parse_constant=constants.append)
    assert constants == []


def test_every_source_region_and_biome_is_present():
    """The CMEC rule: every level above the metrics holds every value of its dimension."""
    results = metric_bundle(_rows())["RESULTS"]
    assert results["OBS-REF"]["North Atlantic"]["SP II"] == {}
    for source in results.values():
        assert set(source) == set(REGIONS)
        for region in source.values():
            assert set(region) == {ALL_BIOMES, *BIOMES}


def test_the_file_is_deterministic(tmp_path):
    rows = _rows()
    first = write_metric_bundle(tmp_path / "a" / "cmec.json", rows, provenance={"run": 1})
    content = first.read_bytes()
    write_metric_bundle(first, rows, provenance={"run": 1})  # overwrite in place
    assert first.read_bytes() == content
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    other = write_metric_bundle(tmp_path / "b.json", shuffled, provenance={"run": 1})
    assert other.read_bytes() == content
    assert sorted(p.name for p in first.parent.iterdir()) == ["cmec.json"]  # no temporary left
    assert CMECMetric.load_from_json(first).RESULTS == metric_bundle(rows)["RESULTS"]


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = write_metric_bundle(tmp_path / "cmec.json", _rows())
    before = path.read_bytes()
    with pytest.raises(ValueError, match="not a number"):
        write_metric_bundle(path, [*_rows(), _row("MODEL-A", "Global", "", "f1", "high")])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmec.json"]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"metric": None}, r"metric row 3 .*: missing metric"),
        ({"value": "high"}, r"metric row 3 .*value 'high' is not a number"),
        ({"value": True}, r"metric row 3 .*value True is not a number"),
        ({"value": [1.0]}, r"metric row 3 .*is not a number"),
        ({"dataset": ""}, r"metric row 3 .*dataset must be a non-empty string"),
        ({"region": "attributes"}, r"metric row 3 .*reserves"),
        ({"biome": "all"}, r"metric row 3 .*biome 'all' is reserved"),
        ({"units": "m"}, r"metric row 3 .*units 'm', but row 1 gives '1'"),
        ({"model": "OTHER"}, r"metric row 3 .*dataset 'MODEL-A' is described as"),
    ],
)
def test_malformed_rows_raise_naming_the_row(broken, message):
    rows = _rows()[:6]
    # row 3 is MODEL-A, Global, SUBTR I, coverage_trend; row 1 is its kappa (units "1")
    rows[3] = dict(rows[3], **{k: v for k, v in broken.items() if v is not None})
    if "metric" in broken:
        del rows[3]["metric"]
    if "units" in broken:
        rows[3]["metric"] = "kappa"
        rows[3]["biome"] = "SUBTR I"
    with pytest.raises(ValueError, match=message):
        metric_bundle(rows)


def test_duplicate_rows_and_non_mappings_raise():
    rows = _rows()
    with pytest.raises(ValueError, match=r"metric row \d+ .*a second row .*first is row 0"):
        metric_bundle([*rows, dict(rows[0], value=0.1)])
    with pytest.raises(ValueError, match="metric row 0 .*must be a mapping"):
        metric_bundle([["MODEL-A", "Global", "", "agreement", 1.0, "1"]])
    with pytest.raises(ValueError, match="provenance is not JSON-serializable"):
        metric_bundle(rows, provenance={"when": object()})


def test_no_rows_give_an_empty_valid_bundle():
    bundle = metric_bundle([])
    assert bundle["RESULTS"] == {}
    CMECMetric.model_validate(bundle)


def test_the_frameworks_vocabulary_lacks_a_biome_dimension():
    """source_id, region and metric are in climate-ref's controlled vocabulary; biome is not,
    so the framework must declare it (or a provider folds it away) before it accepts the
    bundle. The bundle itself passes once the vocabulary has the dimension."""
    metric = CMECMetric.model_validate(metric_bundle(_rows()))
    bundled = CV.load(BUNDLED_AFT_CV)
    with pytest.raises(ResultValidationError, match="Unknown dimension: 'biome'"):
        bundled.validate_metrics(metric)
    vocabulary = yaml.safe_load(BUNDLED_AFT_CV.read_text())
    vocabulary["dimensions"].append({
        "name": "biome", "long_name": "Carbon biome", "required": False,
        "allow_extra_values": True,
        "description": "Marine carbon biome (all: the whole map of the region)",
    })  # fmt: skip
    CV.from_text(yaml.safe_dump(vocabulary)).validate_metrics(metric)


def test_cmec_module_does_not_import_climate_ref():
    """climate-ref-core is a test dependency: the workflow layer writes plain JSON."""
    program = ("import sys, carbon_biomes.workflow.cmec; "
               "print(sorted(m for m in sys.modules if m.startswith('climate_ref')))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", program], cwd=REPOSITORY,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert result.stdout.strip() == "[]", result.stdout
