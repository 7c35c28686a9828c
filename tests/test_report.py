"""The offline HTML report of an ESMValCore run (carbon_biomes.workflow.report).

A small fake session directory is built in ``tmp_path``: a recipe copy with a regression and a
comparison script (listed comparison first) and one script of no stage, provenance records with
absolute paths, real PNGs, CSVs (one of them ``comparison_metrics.csv``), NetCDF files and one
record whose file is missing. The report is checked as text and in headless Chromium (every
request a ``file://`` URL, every image loaded, every local link an existing file).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urlparse
from urllib.request import url2pathname

import pytest
import yaml

from carbon_biomes.cli import main
from carbon_biomes.workflow.report import REPORT_NAME, render_report, write_report

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SESSION_NAME = "recipe_fake_20260101_120000"
DIAG = "biomes"
ALIASES = ("SYNTH-ESM-A", "SYNTH-ESM-A_r2i1p1f1", "SYNTH-ESM-B")
NASTY_CAPTION = "Map of <b>biomes</b> & friends; SYNTH-ESM-A"


# --------------------------------------------------------------------------------------------
# the fake session


def _png(path: Path, colour: str, size: tuple[float, float] = (3.0, 2.0)) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=size, dpi=40)
    ax.plot([0, 1, 2], [0, 1, 0], color=colour)
    fig.savefig(path)
    plt.close(fig)


def _netcdf(path: Path, alias: str) -> None:
    import netCDF4

    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("x", 2)
        nc.createVariable("x", "f4", ("x",))[:] = [0.0, 1.0]
        nc.setncatts({"dataset_alias": alias, "source": "carbon-biomes 9.8.7"})


def _csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)


def _record(caption: str, **tags: Any) -> dict[str, Any]:
    return {"caption": caption, "ancestors": [], "authors": ["carbon_biomes_dev"],
            "references": ["mohanty25os"], **tags}  # fmt: skip


def _task(session: Path, script: str, records: dict[Path, dict[str, Any]]) -> None:
    run_dir = session / "run" / DIAG / script
    run_dir.mkdir(parents=True, exist_ok=True)
    provenance = {str(path): record for path, record in records.items()}
    (run_dir / "diagnostic_provenance.yml").write_text(
        yaml.safe_dump(provenance, sort_keys=False), encoding="utf-8"
    )
    settings = {"run_dir": str(run_dir), "work_dir": str(session / "work" / DIAG / script),
                "plot_dir": str(session / "plots" / DIAG / script)}  # fmt: skip
    (run_dir / "settings.yml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    (run_dir / "log.txt").write_text(f"log of {script}\n", encoding="utf-8")


def make_session(root: Path) -> Path:
    """A small ESMValCore session directory of a regression, a comparison and another script."""
    session = root / SESSION_NAME
    run = session / "run"
    run.mkdir(parents=True)
    recipe = {
        "documentation": {
            "title": "Fake <carbon> biomes & run",
            "description": "A fake run for the `report` tests.\n\nSecond paragraph.",
            "authors": ["carbon_biomes_dev"],
            "references": ["mohanty25os"],
        },
        "datasets": [
            {
                "dataset": "SYNTH-ESM-A",
                "project": "CMIP6",
                "exp": "historical",
                "ensemble": "r1i1p1f1",
            },
            {
                "dataset": "SYNTH-ESM-A",
                "project": "CMIP6",
                "exp": "historical",
                "ensemble": "r2i1p1f1",
            },
            {
                "dataset": "SYNTH-ESM-B",
                "project": "CMIP6",
                "exp": "historical",
                "ensemble": "r1i1p1f1",
            },
        ],  # fmt: skip
        "diagnostics": {
            DIAG: {
                "scripts": {  # recipe order differs from the pipeline order
                    "cmp": {"script": "carbon_biomes/compare_biomes.py", "ancestors": ["reg"]},
                    "reg": {"script": "carbon_biomes/regress_boxes.py", "box_size": 4.0},
                    "extra": {"script": "somewhere/plot_extra.py"},
                }
            }
        },
    }
    (run / "recipe_fake.yml").write_text(yaml.safe_dump(recipe, sort_keys=False), "utf-8")
    (run / "recipe_fake_filled.yml").write_text("# filled\n", encoding="utf-8")
    (run / "main_log.txt").write_text(
        "INFO    [1] ESMValCore: 2.15.0\n"
        "INFO    [1] Starting the Earth System Model Evaluation Tool at time: "
        "2026-01-01 12:00:00 UTC\n"
        "INFO    [1] Ending the Earth System Model Evaluation Tool at time: "
        "2026-01-01 12:03:00 UTC\n"
        "INFO    [1] Time for running the recipe was: 0:03:00.123\n"
        "INFO    [1] Run was successful\n",
        encoding="utf-8",
    )

    work, plots = session / "work" / DIAG / "reg", session / "plots" / DIAG / "reg"
    records: dict[Path, dict[str, Any]] = {}
    for alias in ALIASES:
        _netcdf(work / f"{alias}_monthly_rcs.nc", alias)
        records[work / f"{alias}_monthly_rcs.nc"] = _record(f"Monthly RCs of {alias}.")
    # record order zeta before alpha: the report keeps it (no alphabetical sorting)
    _png(plots / "SYNTH-ESM-A_zeta.png", "red", (6.0, 2.0))
    records[plots / "SYNTH-ESM-A_zeta.png"] = _record(NASTY_CAPTION, plot_types=["geo"])
    _png(plots / "SYNTH-ESM-A_alpha.png", "blue")
    records[plots / "SYNTH-ESM-A_alpha.png"] = _record("Alpha figure of SYNTH-ESM-A.")
    _png(plots / "SYNTH-ESM-A_r2i1p1f1_map.png", "green")
    records[plots / "SYNTH-ESM-A_r2i1p1f1_map.png"] = _record("Map of the second member.")
    _csv(work / "SYNTH-ESM-B_table.csv", ["a", "b"], [[1, 2.5], [3, float("nan")]])
    records[work / "SYNTH-ESM-B_table.csv"] = _record("A table of SYNTH-ESM-B.")
    records[work / "SYNTH-ESM-A_gone.csv"] = _record("This file was deleted.")
    metrics = [[alias, alias.split("_")[0], "r1i1p1f1", "historical", "all", "n_boxes", 10 + i]
               for i, alias in enumerate(ALIASES)]  # fmt: skip
    _csv(work / "regression_metrics.csv",
         ["dataset", "model", "ensemble", "exp", "biome", "metric", "value"], metrics)  # fmt: skip
    records[work / "regression_metrics.csv"] = _record("Regression metrics of all datasets.")
    _task(session, "reg", records)

    work, plots = session / "work" / DIAG / "cmp", session / "plots" / DIAG / "cmp"
    rows = []
    for dataset in (*ALIASES[1:], "MultiModelMean", "MultiModelSpread"):
        for region in ("Global", "North Atlantic"):
            rows.append([dataset, "m", "r1i1p1f1", "historical", region, "", "kappa",
                         0.8125 if dataset == "SYNTH-ESM-B" else 0.5, "1"])  # fmt: skip
        rows.append([dataset, "m", "r1i1p1f1", "historical", "Global", "SUBTR I",
                     "area_fraction_difference", -1.5, "%"])  # fmt: skip
    header = ["dataset", "model", "ensemble", "exp", "region", "biome", "metric", "value",
              "units"]  # fmt: skip
    _csv(work / "comparison_metrics.csv", header, rows)
    records = {work / "comparison_metrics.csv": _record("Comparison metrics (long format).")}
    _png(plots / "comparison_portrait.png", "purple")
    records[plots / "comparison_portrait.png"] = _record("Portrait diagram of all datasets.")
    _netcdf(work / "SYNTH-ESM-B_common_biomes.nc", "SYNTH-ESM-B")
    records[work / "SYNTH-ESM-B_common_biomes.nc"] = _record("Common biomes of SYNTH-ESM-B.")
    _task(session, "cmp", records)

    plots = session / "plots" / DIAG / "extra"
    _png(plots / "extra_plot.png", "black")
    _task(session, "extra", {plots / "extra_plot.png": _record("A plot of another script.")})
    return session


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    return make_session(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def report(session) -> Path:
    return write_report(session)


# --------------------------------------------------------------------------------------------
# the HTML as text


class _Attributes(HTMLParser):
    """Every ``src`` and ``href`` attribute, every ``id`` and the text of ``<style>``."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.links.append((tag, name, value))
            if name == "id" and value:
                self.ids.add(value)


def _parse(path: Path) -> _Attributes:
    parser = _Attributes()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _section(html: str, anchor: str) -> str:
    """The HTML of the ``<section>`` with id ``anchor`` (up to the next stage section)."""
    start = html.index(f'<section class="stage" id="{anchor}"')
    end = html.find('<section class="stage"', start + 1)
    return html[start : end if end > 0 else len(html)]


def test_report_is_written_into_the_session_directory(session, report):
    assert report == session / REPORT_NAME
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "<title>Fake &lt;carbon&gt; biomes &amp; run · carbon-biomes report</title>" in html
    assert "<code>report</code>" in html and "Second paragraph." in html
    for text in ("2026-01-01 12:00:00 UTC", "0:03:00", "successful", "2.15.0", "9.8.7"):
        assert text in html, text
    assert html.count("<tr><td>SYNTH-ESM-A</td>") == 2  # the recipe's datasets
    for alias in ALIASES:
        assert f'<span class="chip mono">{alias}</span>' in html


def test_stages_in_pipeline_order_and_unknown_scripts_after(report):
    html = report.read_text(encoding="utf-8")
    headings = re.findall(r'<h2><span class="num">(\d+)</span>([^<]+)</h2>', html)
    assert headings == [("1", "Regression"), ("2", "Comparison"), ("3", "Script plot_extra.py")]
    assert "A plot of another script." in _section(html, "plot_extra-py")


def test_datasets_sorted_then_all_datasets_and_records_in_written_order(report):
    html = _section(report.read_text(encoding="utf-8"), "regression")
    groups = re.findall(r'<section class="group" id="[^"]+">\s*<h3>([^<]+)', html)
    assert groups == [*sorted(ALIASES), "All datasets"]
    group_a = html[html.index("<h3>SYNTH-ESM-A<") : html.index("<h3>SYNTH-ESM-A_r2i1p1f1")]
    assert group_a.index("SYNTH-ESM-A_zeta.png") < group_a.index("SYNTH-ESM-A_alpha.png")
    assert "SYNTH-ESM-A_r2i1p1f1" not in group_a  # the longest alias prefix wins
    group_r2 = html[html.index("<h3>SYNTH-ESM-A_r2i1p1f1") : html.index("<h3>SYNTH-ESM-B")]
    assert "SYNTH-ESM-A_r2i1p1f1_map.png" in group_r2
    assert "SYNTH-ESM-A_r2i1p1f1_monthly_rcs.nc" in group_r2
    everything = html[html.index("<h3>All datasets") :]
    assert "regression_metrics.csv" in everything and "Metrics by dataset" in everything


def test_captions_are_escaped_text(report):
    html = report.read_text(encoding="utf-8")
    assert "Map of &lt;b&gt;biomes&lt;/b&gt; &amp; friends; SYNTH-ESM-A" in html
    assert "<b>biomes</b>" not in html


def test_every_figure_and_file_is_linked_by_an_existing_relative_path(session, report):
    parsed = _parse(report)
    images = [value for tag, name, value in parsed.links if tag == "img"]
    assert len(images) == 5  # regression 3, portrait, extra plot (not the missing file)
    assert sorted(Path(unquote(src)).name for src in images if "extra" not in src) == [
        "SYNTH-ESM-A_alpha.png", "SYNTH-ESM-A_r2i1p1f1_map.png", "SYNTH-ESM-A_zeta.png",
        "comparison_portrait.png",
    ]  # fmt: skip
    linked = set()
    for tag, name, value in parsed.links:
        assert not re.match(r"(?i)\s*(https?:)?//", value), (tag, name, value)
        target, fragment = urldefrag(value)
        if not target:
            assert fragment in parsed.ids, value
            continue
        assert not Path(target).is_absolute() and ":" not in target, value
        path = (report.parent / unquote(target)).resolve()
        assert path.is_file(), value
        linked.add(path.name)
    for name in ("SYNTH-ESM-B_table.csv", "regression_metrics.csv", "comparison_metrics.csv",
                 "SYNTH-ESM-A_monthly_rcs.nc", "SYNTH-ESM-B_common_biomes.nc", "main_log.txt",
                 "recipe_fake.yml", "log.txt"):  # fmt: skip
        assert name in linked, name
    assert {"link", "script", "iframe"}.isdisjoint(parsed.tags)  # styles are inline
    assert parsed.tags.count("style") == 1


def test_missing_output_is_reported_not_linked(report):
    html = report.read_text(encoding="utf-8")
    missing = html[html.index('<section class="missing"') :]
    missing = missing[: missing.index("</section>")]
    assert "SYNTH-ESM-A_gone.csv" in missing and "This file was deleted." in missing
    assert not any("gone" in value for _, _, value in _parse_text(html).links)


def _parse_text(html: str) -> _Attributes:
    parser = _Attributes()
    parser.feed(html)
    return parser


def test_comparison_metrics_rendered_as_tables(report):
    html = _section(report.read_text(encoding="utf-8"), "comparison")
    assert "<h4>kappa (1)</h4>" in html and "<h4>area_fraction_difference (%)</h4>" in html
    kappa = html[html.index("<h4>kappa (1)</h4>") : html.index("<h4>area_fraction")]
    # datasets as rows, the regions as columns, multi-model rows last and marked
    assert re.search(r"<th[^>]*>Global</th><th[^>]*>North Atlantic</th>", kappa)
    rows = re.findall(r'<tr(?: class="([^"]+)")?><th scope="row">([^<]+)</th>', kappa)
    assert [name for _, name in rows] == [
        "SYNTH-ESM-A_r2i1p1f1", "SYNTH-ESM-B", "MultiModelMean", "MultiModelSpread"
    ]  # fmt: skip
    assert [css for css, _ in rows] == ["", "", "multi-model", "multi-model"]
    assert '<td class="num">0.8125</td>' in kappa
    fraction = html[html.index("<h4>area_fraction_difference (%)</h4>") :]
    assert "For region Global, biome SUBTR I" in fraction and "−1.5" not in fraction
    assert '<td class="num">-1.5</td>' in fraction


def test_small_csv_preview_and_metric_pivot(report):
    html = report.read_text(encoding="utf-8")
    table = html[html.index("SYNTH-ESM-B_table.csv") :]
    table = table[: table.index("</details>")]
    assert "Table preview" in table and '<td class="num">2.5</td>' in table
    assert '<td class="num">–</td>' in table  # NaN
    pivot = html[html.index("Metrics by dataset") :]
    assert re.search(r"<th[^>]*>metric</th>(<th[^>]*>SYNTH-ESM-[^<]+</th>){3}", pivot)
    assert '<th scope="row">n_boxes</th><td class="num">10</td>' in pivot


def test_report_elsewhere_links_back_into_the_session(session, tmp_path):
    output = write_report(session, tmp_path / "reports" / "run.html")
    assert output == tmp_path / "reports" / "run.html"
    parsed = _parse(output)
    files = [value for _, _, value in parsed.links if not value.startswith("#")]
    assert files and all(value.startswith("../") for value in files)
    for value in files:
        assert (output.parent / unquote(value)).resolve().is_file(), value


def test_copied_session_links_its_own_files(session, tmp_path):
    """The records hold absolute paths of the original directory; a copy links its own files."""
    copy = tmp_path / "elsewhere" / SESSION_NAME
    shutil.copytree(session, copy, ignore=shutil.ignore_patterns(REPORT_NAME))
    output = write_report(copy)
    for _, _, value in _parse(output).links:
        target, _ = urldefrag(value)
        if target:
            path = (output.parent / unquote(target)).resolve()
            assert path.is_file() and path.is_relative_to(copy.resolve()), value


def test_script_without_provenance_and_aliases_from_the_recipe(session, tmp_path):
    """A failed regression (log, no provenance) is noted; aliases then come from the recipe."""
    copy = tmp_path / SESSION_NAME
    shutil.copytree(session, copy, ignore=shutil.ignore_patterns(REPORT_NAME))
    (copy / "run" / DIAG / "reg" / "diagnostic_provenance.yml").unlink()
    html = write_report(copy).read_text(encoding="utf-8")
    regression = _section(html, "regression")
    assert "This script recorded no provenance" in regression
    assert 'href="run/biomes/reg/log.txt"' in regression
    comparison = _section(html, "comparison")
    groups = re.findall(r'<section class="group" id="[^"]+">\s*<h3>([^<]+)', comparison)
    assert groups == ["SYNTH-ESM-B", "All datasets"]


def test_not_a_session_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run/ folder"):
        render_report(tmp_path, tmp_path / "report.html")


def test_cli_report(session, tmp_path, capsys):
    output = tmp_path / "cli" / "report.html"
    assert main(["-q", "report", str(session), "--output", str(output)]) == 0
    assert capsys.readouterr().out.strip() == str(output.resolve())
    assert output.is_file()
    assert main(["-q", "report", str(session)]) == 0
    assert capsys.readouterr().out.strip() == str((session / REPORT_NAME).resolve())
    with pytest.raises(SystemExit) as error:
        main(["report", str(tmp_path / "nowhere")])
    assert error.value.code == 2
    assert "invalid SESSION_DIR" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# the report in headless Chromium


def chromium_executable() -> str:
    """Chromium's path; skip if it is absent, unless ``CI`` or ``CARBON_BIOMES_CHROMIUM`` is set."""
    path = os.environ.get("CARBON_BIOMES_CHROMIUM", "/usr/bin/chromium")
    strict = bool(os.environ.get("CI") or os.environ.get("CARBON_BIOMES_CHROMIUM"))
    problem = None
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        problem = f"no Chromium executable at {path} (set CARBON_BIOMES_CHROMIUM to its path)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError as err:
            problem = f"playwright is not installed ({err}; pip install -e '.[test]')"
    if problem and strict:
        pytest.fail(f"{problem}; CI or CARBON_BIOMES_CHROMIUM is set, so this test must run")
    if problem:
        pytest.skip(problem)
    return path


def browser_check(report: Path, executable: str, screenshot: Path | None = None) -> dict:
    """Open the report in headless Chromium; what was requested, loaded and linked.

    Returns a dict with ``requests`` (every URL requested), ``failed`` (failed requests),
    ``images`` (``src``, ``complete``, ``naturalWidth`` of every ``<img>``) and ``links``
    (the absolute URL of every ``<a href>``), and ``ids`` (every element id).
    """
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    failed: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            # a request that is not for a local file is recorded, then aborted: never sent
            page.route(re.compile(r"^(?!file:)"), lambda route: route.abort())
            page.on("request", lambda request: requests.append(request.url))
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.goto(report.as_uri(), wait_until="load")
            page.evaluate(
                "Promise.all(Array.from(document.images).map(i => i.decode().catch(() => 0)))"
            )
            images = page.evaluate(
                "Array.from(document.images).map(i => "
                "({src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth}))"
            )
            links = page.evaluate("Array.from(document.querySelectorAll('a[href]'), a => a.href)")
            ids = page.evaluate("Array.from(document.querySelectorAll('[id]'), e => e.id)")
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {"requests": requests, "failed": failed, "images": images, "links": links,
            "ids": set(ids)}  # fmt: skip


def assert_offline_and_complete(report: Path, result: dict, n_images: int | None = None) -> None:
    """Only ``file://`` requests, every image loaded, every local link an existing file."""
    assert result["requests"], "the browser requested nothing"
    external = [url for url in result["requests"] if not url.startswith("file://")]
    assert not external, f"external requests: {external}"
    assert not result["failed"], f"failed requests: {result['failed']}"
    assert result["images"], "no image in the report"
    if n_images is not None:
        assert len(result["images"]) == n_images
    broken = [image["src"] for image in result["images"]
              if not (image["complete"] and image["width"] > 0)]  # fmt: skip
    assert not broken, f"images not loaded: {broken}"
    page = report.resolve().as_uri()
    for url in result["links"]:
        target, fragment = urldefrag(url)
        assert target.startswith("file://"), url
        if target == page:
            assert fragment in result["ids"], url
        else:
            path = Path(url2pathname(urlparse(target).path))
            assert path.is_file(), url


def test_report_in_headless_chromium(report):
    executable = chromium_executable()
    result = browser_check(report, executable)
    assert_offline_and_complete(report, result, n_images=5)
    assert report.resolve().as_uri() in result["requests"]


def test_browser_check_can_fail(report):
    """The check sees an external request, a broken image and a link to a missing file."""
    executable = chromium_executable()
    bad = report.with_name("bad_report.html")
    snippet = ('<img src="https://example.invalid/x.png"><img src="plots/none.png">'
               '<a href="work/none.csv">x</a>')  # fmt: skip
    html = report.read_text(encoding="utf-8").replace("</main>", f"{snippet}</main>")
    bad.write_text(html, encoding="utf-8")
    try:
        result = browser_check(bad, executable)
    finally:
        bad.unlink()
    assert "https://example.invalid/x.png" in result["requests"]
    assert {"src": "plots/none.png", "complete": True, "width": 0} in result["images"]
    assert any(url.endswith("/work/none.csv") for url in result["links"])
    with pytest.raises(AssertionError, match="external requests"):
        assert_offline_and_complete(bad, result)
    result["requests"] = [url for url in result["requests"] if url.startswith("file:")]
    result["failed"] = []
    with pytest.raises(AssertionError, match="images not loaded"):
        assert_offline_and_complete(bad, result)
    result["images"] = [image for image in result["images"] if image["width"]]
    with pytest.raises(AssertionError, match="none.csv"):
        assert_offline_and_complete(bad, result)


def test_preprocessed_ancestors_are_named_not_linked(tmp_path):
    """ESMValCore deletes preproc/ after the run that wrote the report: no link may point there."""
    session = make_session(tmp_path)
    preprocessed = session / "preproc" / DIAG / "tos" / "CMIP6_SYNTH-ESM-A_tos.nc"
    preprocessed.parent.mkdir(parents=True)
    preprocessed.write_bytes(b"")
    figure = session / "plots" / DIAG / "extra" / "SYNTH-ESM-A_extra_map.png"
    figure.parent.mkdir(parents=True, exist_ok=True)
    _png(figure, "tab:red")
    _task(session, "extra", {figure: _record("A map.", ancestors=[str(preprocessed)])})
    html = write_report(session, tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "CMIP6_SYNTH-ESM-A_tos.nc" in html
    assert not any("preproc" in value for _, _, value in _parse_text(html).links)
