"""ESMValCore 2.15 accepts recipes/recipe_carbon_biomes_cmip6.yml against an archive in its DRS.

The recipe needs the CMIP6 archive and CMORized observations, which are not on this machine, so
the test builds a tree of PLACEHOLDER files in the same directory structure and with the same
file names, for exactly the datasets, variables, experiments and years the recipe asks for:
ESMValCore finds input data and checks the time coverage from the file names alone (its
``LocalDataSource`` globs the directory and file-name templates and reads the years from the
names), so files of a few bytes are enough for these checks. They are never opened: the test
stops before preprocessing.

It then runs ESMValCore's own recipe checks in a fresh ``python`` process started from the
repository root (where ESMValCore, without the ``esmvaltool`` package, finds
``config-references.yml``, ``references/`` and ``diag_scripts/``):
``esmvalcore._recipe.recipe.read_recipe_file(recipe, session)``, which is what ``esmvaltool
run`` calls before it runs any task (ESMValCore 2.15 has no dry-run option). It validates the
recipe against ESMValCore's schema, the documentation tags against ``config-references.yml``,
resolves every dataset (facets from the CMOR tables and controlled vocabulary, aliases), finds
the files and checks that they cover the requested time range, checks the preprocessor
settings and that every diagnostic script exists, and builds the task graph. ``Recipe.run``,
which preprocesses and runs the scripts, is never called.

The test fails when the recipe asks for something the tree lacks: removing one model's talkos
file, or shortening one scenario file by a year, must make ESMValCore refuse the recipe and
name what is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from carbon_biomes.esmvalcore_config import CMIP6_DIRNAME, CMIP6_FILENAME

REPOSITORY = Path(__file__).resolve().parent.parent
RECIPE = REPOSITORY / "recipes" / "recipe_carbon_biomes_cmip6.yml"
REFERENCE_ALIAS = "OBS-reference"
#: Years each CMIP6 experiment covers (the CMIP6 protocol).
EXPERIMENT_YEARS = {"historical": (1850, 2014), "ssp585": (2015, 2100)}
VERSION = "v20190101"

#: Runs ESMValCore's recipe checks and prints a JSON summary of the tasks (or of the errors).
CHECK_PROGRAM = r"""
import json, sys
from pathlib import Path

from esmvalcore.config import CFG
from esmvalcore._recipe.recipe import read_recipe_file
from esmvalcore.exceptions import RecipeError
from esmvalcore.preprocessor import PreprocessingTask

recipe_file = Path(sys.argv[1])
session = CFG.start_session(recipe_file.stem)
try:
    recipe = read_recipe_file(recipe_file, session)
except RecipeError as exc:
    print(json.dumps({"error": exc.message,
                      "failed": [task.message for task in exc.failed_tasks]}))
    sys.exit(3)

def flatten(tasks):
    for task in tasks:
        yield task
        yield from flatten(task.ancestors)

summary = {"preprocessing": {}, "diagnostic": {}}
for task in {t.name: t for t in flatten(recipe.tasks)}.values():
    if isinstance(task, PreprocessingTask):
        summary["preprocessing"][task.name] = [
            {
                "alias": product.attributes["alias"],
                "dataset": product.attributes["dataset"],
                "project": product.attributes["project"],
                "short_name": product.attributes["short_name"],
                "exp": product.attributes.get("exp"),
                "timerange": product.attributes.get("timerange"),
                "steps": sorted(product.settings),
                "regrid": product.settings.get("regrid"),
                "files": sorted(Path(str(f)).name for f in product.datasets[0].files)
                + sorted(Path(str(f)).name for d in product.datasets[1:] for f in d.files),
            }
            for product in task.products
        ]
    else:
        summary["diagnostic"][task.name] = {
            "script": task.script,
            "ancestors": sorted(ancestor.name for ancestor in task.ancestors),
            "settings": {k: v for k, v in task.settings.items()
                         if k not in ("recipe", "run_dir", "work_dir", "plot_dir",
                                      "auxiliary_data_dir", "output_file_type", "log_level",
                                      "profile_diagnostic", "version", "script")},
        }
print(json.dumps(summary, default=str))
"""


# --- what the recipe asks for ---------------------------------------------------------------


def _recipe() -> dict[str, Any]:
    return yaml.safe_load(RECIPE.read_text(encoding="utf-8"))


def _requests(recipe: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every (dataset, variable) of every variable group, with the facets merged as ESMValCore
    merges them: the variable's facets, overridden by the dataset entry's."""
    for diagnostic in recipe["diagnostics"].values():
        for group, variable in (diagnostic.get("variables") or {}).items():
            entries = [*recipe.get("datasets", []), *diagnostic.get("additional_datasets", []),
                       *variable.get("additional_datasets", [])]  # fmt: skip
            for entry in entries:
                facets = {k: v for k, v in variable.items() if k != "additional_datasets"}
                facets.update(entry)
                facets.setdefault("short_name", group)
                yield facets


def _years(facets: dict[str, Any]) -> tuple[int, int] | None:
    if facets["mip"].endswith("fx"):
        return None
    start, end = str(facets["timerange"]).split("/")
    return int(start[:4]), int(end[:4])


def _cmip6_tables() -> Any:
    """ESMValCore's CMIP6 tables and controlled vocabulary (``institutes``, ``activities``)."""
    import esmvalcore.cmor.table as cmor_table
    import esmvalcore.config  # noqa: F401  (loading the configuration reads the CMOR tables)

    return cmor_table.CMOR_TABLES["CMIP6"]


def _placeholder_paths(recipe: dict[str, Any]) -> set[Path]:
    """Relative paths of the files the recipe asks for, in the DRS of the configuration."""
    tables = _cmip6_tables()
    paths: set[Path] = set()
    for facets in _requests(recipe):
        years = _years(facets)
        if facets["project"] == "CMIP6":
            exps = facets["exp"] if isinstance(facets["exp"], list) else [facets["exp"]]
            for exp in exps:
                names = {**facets, "exp": exp, "activity": tables.activities[exp][0],
                         "institute": tables.institutes[facets["dataset"]][0],
                         "version": VERSION, "project": "CMIP6"}  # fmt: skip
                folder = Path(CMIP6_DIRNAME.format(**names))
                stem = CMIP6_FILENAME.removesuffix("*.nc").format(**names)
                if years is None:
                    paths.add(folder / f"{stem}.nc")
                    continue
                first, last = EXPERIMENT_YEARS[exp]
                first, last = max(first, years[0]), min(last, years[1])
                if first <= last:
                    paths.add(folder / f"{stem}_{first}01-{last}12.nc")
        else:  # OBS and OBS6: ESMValTool's CMORizer output
            stem = "{project}_{dataset}_{type}_{version}_{mip}_{short_name}".format(**facets)
            folder = Path(facets["project"], f"Tier{facets['tier']}", facets["dataset"])
            if years is None:
                paths.add(folder / f"{stem}.nc")
            else:
                paths.add(folder / f"{stem}_{years[0]}01-{years[1]}12.nc")
    return paths


def _obs_data_sources(root: Path) -> dict[str, Any]:
    """The OBS/OBS6 data sources of ESMValCore's own example configuration, rooted at ``root``.

    ``data-local-esmvaltool.yml`` ships with ESMValCore (``esmvaltool config copy`` installs it);
    reading it here keeps the test on ESMValCore's default templates for CMORized observations.
    """
    import esmvalcore

    example = Path(esmvalcore.__file__).parent / "config" / "configurations"
    projects = yaml.safe_load((example / "data-local-esmvaltool.yml").read_text())["projects"]
    sources = {}
    for project in ("OBS", "OBS6"):
        local = dict(projects[project]["data"]["local"])
        local["rootpath"] = str(root / project)
        sources[project] = {"data": {"local": local}}
    return sources


# --- the archive, the configuration and the check -------------------------------------------


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> dict[str, Any]:
    """A placeholder archive of everything the recipe asks for, and a configuration for it."""
    root = tmp_path_factory.mktemp("cmip6_archive")
    recipe = _recipe()
    paths = _placeholder_paths(recipe)
    for relative in paths:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"placeholder: ESMValCore's data finding reads only the name\n")
    return {"root": root, "paths": paths, "recipe": recipe}


def _write_config(folder: Path, data_root: Path, output_dir: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "output_dir": str(output_dir),
        "search_data": "quick",
        "projects": {
            "CMIP6": {"data": {"local": {
                "type": "esmvalcore.io.local.LocalDataSource",
                "rootpath": str(data_root),
                "dirname_template": CMIP6_DIRNAME,
                "filename_template": CMIP6_FILENAME,
            }}},
            **_obs_data_sources(data_root),
        },
    }  # fmt: skip
    (folder / "config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


def _check(
    data_root: Path, tmp_path: Path, recipe: Path = RECIPE
) -> tuple[int, dict[str, Any], str]:
    """Run ESMValCore's recipe checks on ``recipe`` with a configuration for ``data_root``."""
    config_dir = _write_config(tmp_path / "config", data_root, tmp_path / "output")
    env = {**os.environ, "ESMVALTOOL_CONFIG_DIR": str(config_dir)}
    result = subprocess.run(
        [sys.executable, "-c", CHECK_PROGRAM, str(recipe)],
        cwd=REPOSITORY, env=env, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    try:
        summary = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        summary = {}
    return result.returncode, summary, result.stderr


@pytest.fixture(scope="module")
def accepted(archive, tmp_path_factory) -> dict[str, Any]:
    returncode, summary, stderr = _check(archive["root"], tmp_path_factory.mktemp("check"))
    assert returncode == 0 and "error" not in summary, (summary, stderr[-5000:])
    return summary


def _models(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(entry) for entry in recipe["CMIP6_MODELS"]]


# --- the recipe is accepted -----------------------------------------------------------------


def test_the_placeholder_tree_holds_every_requested_file(archive):
    recipe = archive["recipe"]
    models = _models(recipe)
    names = {path.name for path in archive["paths"]}
    for model in models:
        for short_name in ("spco2", "tos", "dissicos", "talkos"):
            for exp, years in (("historical", "198501-201412"), ("ssp585", "201501-210012")):
                name = (f"{short_name}_Omon_{model['dataset']}_{exp}_{model['ensemble']}_"
                        f"{model['grid']}_{years}.nc")  # fmt: skip
                assert name in names, name
        assert (f"areacello_Ofx_{model['dataset']}_historical_{model['ensemble']}_"
                f"{model['grid']}.nc") in names  # fmt: skip
    for obs in ("OBS6_OceanSODA-ETHZ_reanaly_v2023_Omon_{}_198501-201412.nc",):
        for short_name in ("spco2", "dissicos", "talkos"):
            assert obs.format(short_name) in names
    assert "OBS6_OceanSODA-ETHZ_reanaly_v2023_Ofx_areacello.nc" in names
    assert "OBS_HadISST_reanaly_1_Omon_tos_198501-201412.nc" in names
    # 13 x (4 variables x 2 experiments + areacello) + the reference's 5 files
    assert len(archive["paths"]) == len(models) * 9 + 5


def test_esmvalcore_accepts_the_recipe(accepted, archive):
    models = _models(archive["recipe"])
    preprocessing, diagnostic = accepted["preprocessing"], accepted["diagnostic"]
    assert set(diagnostic) == {f"{d}/{s}" for d in ("historical", "scenario")
                               for s in ("regression", "detection", "tracking", "analysis",
                                         "comparison")}  # fmt: skip
    aliases = {model["alias"] for model in models}
    for diag in ("historical", "scenario"):
        for short_name in ("spco2", "tos", "dissicos", "talkos", "areacello"):
            products = preprocessing[f"{diag}/{short_name}"]
            assert {p["alias"] for p in products} == aliases
            assert {p["project"] for p in products} == {"CMIP6"}
    expected_reference = {"spco2": "OceanSODA-ETHZ", "dissicos": "OceanSODA-ETHZ",
                          "talkos": "OceanSODA-ETHZ", "areacello": "OceanSODA-ETHZ",
                          "tos": "HadISST"}  # fmt: skip
    for short_name, product_name in expected_reference.items():
        [product] = preprocessing[f"historical/{short_name}_reference"]
        assert (product["alias"], product["dataset"]) == (REFERENCE_ALIAS, product_name)
    assert not any(name.startswith("scenario/") and name.endswith("_reference")
                   for name in preprocessing)  # fmt: skip


def test_only_the_observations_are_regridded(accepted):
    for name, products in accepted["preprocessing"].items():
        for product in products:
            if product["alias"] == REFERENCE_ALIAS:
                assert product["regrid"] == {"target_grid": "1x1", "scheme": "linear"}, name
                assert ("regrid_time" in product["steps"]) == (product["short_name"] != "areacello")
            else:
                assert "regrid" not in product["steps"], (name, product["alias"])


def test_periods_experiments_and_files(accepted):
    for name, products in accepted["preprocessing"].items():
        for product in products:
            if product["short_name"] == "areacello":
                assert product["timerange"] is None and len(product["files"]) == 1
                continue
            if name.startswith("historical/"):
                assert product["timerange"] == "1985/2014"
                assert len(product["files"]) == 1
            else:
                assert product["timerange"] == "1985/2100"
                assert product["exp"] == ["historical", "ssp585"]
                assert [f.rsplit("_", 1)[-1] for f in product["files"]] == [
                    "198501-201412.nc",
                    "201501-210012.nc",
                ]


def test_script_settings_and_ancestors(accepted):
    diagnostic = accepted["diagnostic"]
    for diag in ("historical", "scenario"):
        tasks = {name.split("/")[1]: task for name, task in diagnostic.items()
                 if name.startswith(f"{diag}/")}  # fmt: skip
        assert tasks["regression"]["script"] == "carbon_biomes/regress_boxes.py"
        assert tasks["comparison"]["script"] == "carbon_biomes/compare_biomes.py"
        assert tasks["detection"]["ancestors"] == [f"{diag}/regression"]
        assert tasks["tracking"]["ancestors"] == [f"{diag}/detection", f"{diag}/regression"]
        assert tasks["comparison"]["ancestors"] == sorted(
            f"{diag}/{s}" for s in ("regression", "detection", "tracking", "analysis")
        )
        analysis_inputs = {a for a in tasks["analysis"]["ancestors"]
                           if a.split("/")[1] not in ("regression", "tracking")}  # fmt: skip
        regression_inputs = set(tasks["regression"]["ancestors"])
        # analysis reads every preprocessed field the regression reads
        assert analysis_inputs == regression_inputs
        assert tasks["analysis"]["settings"]["context_variables"] == ["sst", "fco2"]
        assert tasks["detection"]["settings"]["reference_months"] == ["2000-01"]
        assert tasks["regression"]["settings"]["box_size"] == 4.0
        comparison = tasks["comparison"]["settings"]
        assert comparison["regions"] == ["Arctic", "North Atlantic", "Equatorial Pacific",
                                         "Southern Ocean", "Global"]  # fmt: skip
        assert (comparison["trend_method"], comparison["min_years"]) == ("prewhitening", 10)
        if diag == "historical":
            assert comparison["reference"] == REFERENCE_ALIAS
            assert comparison["common_labels"] == "reference"
            assert f"{diag}/tos_reference" in regression_inputs
        else:
            assert "reference" not in comparison
            assert comparison["common_labels"] == "pooled"
            assert not any(a.endswith("_reference") for a in regression_inputs)


def test_script_settings_pass_our_own_validation(accepted):
    """The settings ESMValCore hands to the scripts are accepted by the scripts' parsers."""
    from carbon_biomes.workflow import settings

    parsers = {
        "regression": settings.RegressionScriptSettings,
        "detection": settings.DetectionScriptSettings,
        "tracking": settings.TrackingScriptSettings,
        "analysis": settings.AnalysisScriptSettings,
        "comparison": settings.ComparisonScriptSettings,
    }
    for name, task in accepted["diagnostic"].items():
        parsers[name.split("/")[1]].from_cfg(task["settings"])


def test_every_cited_reference_has_a_bibtex_file():
    """ESMValCore only warns about a missing ``references/KEY.bibtex`` (and then writes no
    citation for it), so the test checks the keys of the recipe's documentation itself."""
    for key in _recipe()["documentation"]["references"]:
        path = REPOSITORY / "references" / f"{key}.bibtex"
        assert path.is_file(), key
        assert path.read_text(encoding="utf-8").startswith(f"@article{{{key},"), key


# --- and refused when data are missing ------------------------------------------------------


def _copy_tree(archive: dict[str, Any], root: Path, skip: Path | None = None,
               rename: tuple[Path, Path] | None = None) -> None:  # fmt: skip
    for relative in archive["paths"]:
        if relative == skip:
            continue
        target = relative
        if rename and relative == rename[0]:
            target = rename[1]
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"placeholder\n")


def test_a_missing_talkos_file_is_refused_by_name(archive, tmp_path):
    model = _models(archive["recipe"])[-1]
    [missing] = [p for p in archive["paths"]
                 if p.name.startswith(f"talkos_Omon_{model['dataset']}_historical_")]  # fmt: skip
    _copy_tree(archive, tmp_path / "data", skip=missing)
    returncode, summary, stderr = _check(tmp_path / "data", tmp_path)
    assert returncode == 3, (summary, stderr[-3000:])
    messages = "\n".join(summary["failed"])
    # both diagnostics need the file; ESMValCore names the variable group and the dataset
    assert (f"Missing data for preprocessor historical/talkos:\n- Missing data for Dataset: "
            f"talkos, Omon, CMIP6, {model['dataset']}, historical, {model['ensemble']}"
            in messages)  # fmt: skip
    # in the scenario the historical years of the pair historical + ssp585 are missing
    assert "Missing data for preprocessor scenario/talkos:" in messages
    assert "No input data available for years 1985-2014" in messages
    assert messages.count("Missing data for preprocessor") == 2
    others = {m["dataset"] for m in _models(archive["recipe"])} - {model["dataset"]}
    assert not any(name in messages for name in others)


def test_a_scenario_file_one_year_short_is_refused(archive, tmp_path):
    model = _models(archive["recipe"])[0]
    [full] = [p for p in archive["paths"]
              if p.name.startswith(f"spco2_Omon_{model['dataset']}_ssp585_")]  # fmt: skip
    short = full.with_name(full.name.replace("201501-210012", "201501-209912"))
    _copy_tree(archive, tmp_path / "data", rename=(full, short))
    returncode, summary, stderr = _check(tmp_path / "data", tmp_path)
    assert returncode == 3, (summary, stderr[-3000:])
    messages = "\n".join(summary["failed"])
    assert messages.startswith("Missing data for preprocessor scenario/spco2:")
    assert "No input data available for years 2100 in files:" in messages
    assert short.name in messages
    assert messages.count("Missing data for preprocessor") == 1  # all else is complete


# --- why the observations have variable groups of their own ---------------------------------


def test_a_preprocessor_in_a_dataset_entry_is_ignored_by_esmvalcore(archive, tmp_path):
    """ESMValCore 2.15 applies one preprocessor per variable group, from its first dataset.

    The same reference placed in the models' variable groups with ``preprocessor:
    obs_to_common_grid`` in its dataset entries is accepted, but not regridded; this is why the
    recipe gives the observations variable groups of their own. If a later ESMValCore honours
    the dataset entry, this test fails and the recipe can be simplified.
    """
    recipe = _recipe()
    variables = recipe["diagnostics"]["historical"]["variables"]
    for short_name in ("spco2", "dissicos", "talkos", "tos"):
        [reference] = variables.pop(f"{short_name}_reference")["additional_datasets"]
        variables[short_name] = {
            **variables[short_name],
            "additional_datasets": [
                *variables[short_name]["additional_datasets"],
                {**reference, "preprocessor": "obs_to_common_grid"},
            ],
        }
    variables.pop("areacello_reference")
    del recipe["diagnostics"]["scenario"]
    for script in recipe["diagnostics"]["historical"]["scripts"].values():
        if "ancestors" in script:
            script["ancestors"] = [a for a in script["ancestors"] if not a.endswith("_reference")]
    variant = tmp_path / "recipe_dataset_level_preprocessor.yml"
    variant.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    returncode, summary, stderr = _check(archive["root"], tmp_path, recipe=variant)
    assert returncode == 0, (summary, stderr[-3000:])
    reference = [
        product
        for products in summary["preprocessing"].values()
        for product in products
        if product["alias"] == REFERENCE_ALIAS
    ]
    assert {p["short_name"] for p in reference} == {"spco2", "dissicos", "talkos", "tos"}
    assert all(p["regrid"] is None and "regrid" not in p["steps"] for p in reference)
