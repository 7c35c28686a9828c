"""A self-contained, offline HTML report of one ESMValCore run of the carbon-biomes scripts.

ESMValCore's own ``index.html`` loads its styles from the web, shows no table and orders the
figures alphabetically. :func:`write_report` writes ``carbon_biomes_report.html`` into the
session (output) directory instead: the figures and files of every script in pipeline order
(regression, detection, tracking, analysis, comparison; other scripts after), per dataset, in
the order the scripts recorded them, each with its provenance caption, and the comparison
metrics as HTML tables. Styles are inlined; every figure and file is referenced by its path
relative to the report, so the report works offline and from a copy of the whole directory.

What the report reads of the session directory:

- ``run/recipe_*.yml``: the copy of the recipe (title, description, datasets, and the
  ``script:`` path of every script, which gives the stage: ``regress_boxes.py`` is the
  regression, ...);
- ``run/<diagnostic>/<script>/diagnostic_provenance.yml``: the output files of each script with
  their captions and tags (ESMValCore's format, see :mod:`carbon_biomes.workflow.provenance`);
- ``run/main_log.txt``: run time, status and the ESMValCore version.

Outputs are grouped per dataset by their file name ``{alias}_<product>.<ext>``; the aliases of
the run are the prefixes of the regression's ``{alias}_monthly_rcs.nc`` files. Files without an
alias prefix belong to "all datasets".
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import math
import os
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import yaml
from markupsafe import Markup, escape

from carbon_biomes import __version__

__all__ = [
    "REPORT_NAME",
    "SCRIPT_STAGES",
    "STAGES",
    "render_report",
    "write_report",
]

logger = logging.getLogger(__name__)

REPORT_NAME = "carbon_biomes_report.html"
"""File name of the report in the session directory."""

STAGES: tuple[str, ...] = ("regression", "detection", "tracking", "analysis", "comparison")
"""The stages of the pipeline, in order."""

SCRIPT_STAGES: dict[str, str] = {
    "regress_boxes.py": "regression",
    "detect_biomes.py": "detection",
    "track_biomes.py": "tracking",
    "analyse_biomes.py": "analysis",
    "compare_biomes.py": "comparison",
}
"""The stage of each diagnostic script, by the file name of its recipe ``script:`` path."""

_STAGE_TITLES = {
    "regression": "Regression",
    "detection": "Detection",
    "tracking": "Tracking",
    "analysis": "Analysis",
    "comparison": "Comparison",
}
_STAGE_DESCRIPTIONS = {
    "regression": (
        "Box regression of surface fCO2 on SST, DIC and alkalinity in every month; the "
        "regression coefficients (RCs) are read by detection, tracking and analysis."
    ),
    "detection": (
        "Ward clustering of the standardized RCs of the reference month(s) and the adaptive "
        "cut of the dendrogram into carbon biomes."
    ),
    "tracking": (
        "A feed-forward network trained on the reference biomes labels the RCs of every month."
    ),
    "analysis": (
        "Coverage of every biome per region and month, seasonal cycles, trends, frequency "
        "maps, physical context and the trends of the RCs."
    ),
    "comparison": (
        "Every dataset labelled with one common set of biomes, its own biomes matched to them, "
        "and its metrics against the reference, with the multi-model mean and spread."
    ),
}
_FIGURE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"})
_TABLE_SUFFIXES = frozenset({".csv"})
_DATA_SUFFIXES = frozenset({".nc", ".nc4"})
_KIND_ORDER = {"table": 0, "data": 1, "other": 2}
_FILE_TYPES = {".csv": "CSV", ".nc": "NetCDF", ".nc4": "NetCDF", ".json": "JSON"}
_IDENTITY_COLUMNS = ("dataset", "model", "ensemble", "exp")
_MULTI_MODEL = ("MultiModelMean", "MultiModelSpread")
_COMPARISON_METRICS = "comparison_metrics.csv"
_MONTHLY_RCS = "_monthly_rcs.nc"

# Sizes of what is rendered into the page (the full files are always linked).
_PREVIEW_MAX_BYTES = 500_000_000  # the first rows are read, the others only counted
_PREVIEW_ROWS = 15
_PREVIEW_COLUMNS = 16
_PIVOT_MAX_BYTES = 20_000_000
_PIVOT_ROWS = 60
_METRIC_TABLE_ROWS = 60
_METRIC_TABLES = 40
_WIDE_FIGURE = 2.2  # width / height from which a figure takes the whole row


@dataclass
class Table:
    """A table rendered into the report (a part of a CSV file at most).

    Attributes
    ----------
    title
        Heading of the table.
    header
        Column headings.
    rows
        Cells as text, one list per row.
    total_rows
        Number of rows the full table has (``len(rows)`` unless truncated).
    header_columns
        Number of leading columns that are row headings.
    row_classes
        CSS class of each row (``""`` for none).
    note
        A remark shown under the table.
    """

    title: str
    header: list[str]
    rows: list[list[str]]
    total_rows: int
    header_columns: int = 1
    row_classes: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def truncated(self) -> bool:
        """Whether only the first rows of the table are shown."""
        return self.total_rows > len(self.rows)

    @property
    def numeric(self) -> list[bool]:
        """Whether each column holds numbers only (right-aligned); row headings never do."""
        flags = []
        for index in range(len(self.header)):
            cells = [row[index] for row in self.rows if index < len(row) and row[index]]
            flags.append(
                index >= self.header_columns and bool(cells) and all(map(_is_numeric, cells))
            )
        return flags


@dataclass
class OutputFile:
    """One output file of a script, with its provenance record.

    Attributes
    ----------
    path
        Absolute path of the file.
    href
        URL of the file relative to the report.
    kind
        ``figure``, ``table`` (CSV), ``data`` (NetCDF) or ``other``.
    caption
        Caption of the provenance record.
    record
        The whole provenance record.
    size
        File size in bytes.
    anchor
        HTML id of the file's entry.
    width, height
        Pixel size of a PNG figure (``None`` if unknown).
    preview
        The first rows of a CSV table, or the pivot of a long-format metric table.
    ancestors
        ``(name, href or None)`` of each ancestor; ``href`` only if the file exists.
    """

    path: Path
    href: str
    kind: str
    caption: str
    record: dict[str, Any]
    size: int
    anchor: str = ""
    width: int | None = None
    height: int | None = None
    preview: Table | None = None
    ancestors: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """File name."""
        return self.path.name

    @property
    def file_type(self) -> str:
        """Short name of the file format (``CSV``, ``NetCDF``, ...)."""
        suffix = self.path.suffix.lower()
        return _FILE_TYPES.get(suffix, suffix.lstrip(".").upper() or "file")

    @property
    def wide(self) -> bool:
        """Whether a figure is wide enough to take a whole row of the figure grid."""
        if not self.width or not self.height:
            return False
        return self.width / self.height >= _WIDE_FIGURE

    @property
    def tags(self) -> list[str]:
        """The statistics and plot-type tags of the record."""
        values: list[str] = []
        for key in ("statistics", "plot_types"):
            values += [str(value) for value in _as_list(self.record.get(key))]
        return list(dict.fromkeys(values))


@dataclass
class DatasetGroup:
    """The outputs of one script for one dataset (``alias is None``: all datasets)."""

    alias: str | None
    anchor: str
    figures: list[OutputFile] = field(default_factory=list)
    files: list[OutputFile] = field(default_factory=list)

    @property
    def title(self) -> str:
        """Heading of the group."""
        return self.alias if self.alias is not None else "All datasets"


@dataclass
class MissingOutput:
    """A provenance record whose file does not exist."""

    stage: str
    task: str
    path: str
    caption: str


@dataclass
class Task:
    """One diagnostic script run (``run/<diagnostic>/<script>/``)."""

    diagnostic: str
    name: str
    script: str
    stage: str
    order: tuple[int, int]
    run_dir: Path
    groups: list[DatasetGroup] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    has_provenance: bool = True
    n_missing: int = 0

    @property
    def label(self) -> str:
        """``diagnostic/script`` as in ESMValCore's task names."""
        return f"{self.diagnostic}/{self.name}"


@dataclass
class Stage:
    """A section of the report: the tasks of one stage of the pipeline (or an unknown script)."""

    key: str
    title: str
    description: str
    anchor: str
    number: int = 0
    tasks: list[Task] = field(default_factory=list)
    metric_tables: list[Table] = field(default_factory=list)
    metric_file: OutputFile | None = None
    metric_anchor: str = ""
    metric_note: str = ""

    @property
    def n_figures(self) -> int:
        """Number of figures in the section."""
        return sum(len(group.figures) for task in self.tasks for group in task.groups)

    @property
    def n_files(self) -> int:
        """Number of non-figure files in the section."""
        return sum(len(group.files) for task in self.tasks for group in task.groups)


# --------------------------------------------------------------------------------------------
# small helpers


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


class _Anchors:
    """Unique HTML ids from arbitrary text."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def __call__(self, *parts: str) -> str:
        text = "-".join(part for part in parts if part)
        base = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower() or "section"
        anchor, number = base, 1
        while anchor in self._used:
            number += 1
            anchor = f"{base}-{number}"
        self._used.add(anchor)
        return anchor


def _href(path: Path, base: Path) -> str:
    """URL of ``path`` relative to the directory ``base`` (a ``file:`` URI if impossible)."""
    try:
        relative = os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        return path.as_uri()
    return quote(Path(relative).as_posix(), safe="/")


def _png_size(path: Path) -> tuple[int | None, int | None]:
    try:
        with path.open("rb") as stream:
            head = stream.read(24)
    except OSError:
        return None, None
    if len(head) < 24 or not head.startswith(b"\x89PNG\r\n\x1a\n") or head[12:16] != b"IHDR":
        return None, None
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def _format_value(text: str) -> str:
    """A number with 4 significant digits (integers in full); other text unchanged."""
    text = text.strip()
    if not text:
        return ""
    try:
        number = float(text)
    except ValueError:
        return text
    if math.isnan(number):
        return "–"
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    if re.fullmatch(r"[+-]?\d+", text):
        return f"{int(text):d}"
    if 1e5 <= abs(number) < 1e15:
        return f"{number:,.0f}"
    if number != 0 and (abs(number) >= 1e15 or abs(number) < 1e-3):
        return f"{number:.3e}"
    return f"{number:.4g}"


def _is_numeric(text: str) -> bool:
    """Whether a table cell shows a number (right-aligned)."""
    return bool(re.fullmatch(r"[+\-−]?(\d[\d.,]*(e[+-]?\d+)?|∞)|–", str(text).strip()))


def _format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def _inline_code(text: str) -> Markup:
    """Escape text and show ```code``` spans of a recipe description as ``<code>``."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # unbalanced backticks: plain text
        return escape(text)
    html = [
        Markup("<code>{}</code>").format(part) if index % 2 else escape(part)
        for index, part in enumerate(parts)
    ]
    return Markup("").join(html)


def _paragraphs(text: Any) -> list[str]:
    """Paragraphs of a recipe description (blank-line separated, lines joined)."""
    if not text:
        return []
    blocks = re.split(r"\n\s*\n", str(text).strip())
    return [" ".join(line.strip() for line in block.splitlines()) for block in blocks]


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as stream:
            return yaml.safe_load(stream)
    except (OSError, yaml.YAMLError) as err:
        logger.warning("Could not read %s: %s", path, err)
        return None


# --------------------------------------------------------------------------------------------
# the session: recipe, log, versions, datasets


def _recipe_file(run_dir: Path) -> Path | None:
    candidates = sorted(run_dir.glob("recipe_*.yml"))
    plain = [path for path in candidates if not path.stem.endswith("_filled")]
    return (plain or candidates or [None])[0]


def _log_info(main_log: Path) -> dict[str, str]:
    """Start, end, duration, status and ESMValCore version from ``run/main_log.txt``."""
    info: dict[str, str] = {}
    try:
        text = main_log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return info
    patterns = {
        "start": r"Starting the Earth System Model Evaluation Tool at time: (.+?)\s*$",
        "end": r"Ending the Earth System Model Evaluation Tool at time: (.+?)\s*$",
        "duration": r"Time for running the recipe was: ([0-9:]+)",
        "esmvalcore": r"ESMValCore: (\S+)",
    }
    for key, pattern in patterns.items():
        match = re.search(pattern, text, flags=re.MULTILINE)
        if match:
            info[key] = match.group(1).strip()
    if "Run was successful" in text:
        info["status"] = "successful"
    elif re.search(r"^ERROR\s", text, flags=re.MULTILINE):
        info["status"] = "failed"
    return info


def _session_time(session_dir: Path) -> str | None:
    """The run time encoded in the session directory name (``..._YYYYMMDD_HHMMSS``)."""
    match = re.search(r"_(\d{8}_\d{6})$", session_dir.name)
    if not match:
        return None
    stamp = dt.datetime.strptime(match.group(1), "%Y%m%d_%H%M%S")
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def _carbon_biomes_version(paths: Iterable[Path]) -> str | None:
    """The carbon-biomes version in the ``source`` attribute of the first NetCDF output."""
    for path in paths:
        if path.suffix.lower() not in _DATA_SUFFIXES or not path.is_file():
            continue
        try:
            import netCDF4

            with netCDF4.Dataset(path) as nc:
                attributes = {key: str(nc.getncattr(key)) for key in ("source", "history")
                              if key in nc.ncattrs()}  # fmt: skip
        except Exception as err:  # noqa: BLE001 - the version is informative only
            logger.debug("No version from %s: %s", path, err)
            continue
        for value in attributes.values():
            match = re.search(r"carbon-biomes (\S+)", value)
            if match:
                return match.group(1)
    return None


def _recipe_datasets(recipe: Mapping[str, Any]) -> list[dict[str, str]]:
    entries = list(_as_list(recipe.get("datasets")))
    for diagnostic in (recipe.get("diagnostics") or {}).values():
        if isinstance(diagnostic, Mapping):
            entries += _as_list(diagnostic.get("additional_datasets"))
    datasets = []
    for entry in entries:
        if isinstance(entry, Mapping):
            datasets.append({str(key): str(value) for key, value in entry.items()})
    return datasets


def _dataset_columns(datasets: Sequence[Mapping[str, str]]) -> list[str]:
    preferred = ["alias", "dataset", "project", "exp", "ensemble", "grid", "timerange"]
    present = {key for entry in datasets for key in entry}
    columns = [key for key in preferred if key in present]
    columns += sorted(present - set(columns) - {"institute", "mip", "short_name"})
    return columns


# --------------------------------------------------------------------------------------------
# tasks and their outputs


def _recipe_scripts(recipe: Mapping[str, Any]) -> dict[tuple[str, str], tuple[str, int, int]]:
    """``(diagnostic, script name) -> (script path, diagnostic index, script index)``."""
    scripts: dict[tuple[str, str], tuple[str, int, int]] = {}
    diagnostics = recipe.get("diagnostics") or {}
    if not isinstance(diagnostics, Mapping):
        return scripts
    for diag_index, (diagnostic, content) in enumerate(diagnostics.items()):
        entries = (content or {}).get("scripts") if isinstance(content, Mapping) else None
        if not isinstance(entries, Mapping):
            continue
        for script_index, (name, settings) in enumerate(entries.items()):
            path = settings.get("script", "") if isinstance(settings, Mapping) else ""
            scripts[(str(diagnostic), str(name))] = (str(path or ""), diag_index, script_index)
    return scripts


def _stage_of(script: str, name: str) -> str:
    stage = SCRIPT_STAGES.get(Path(script).name) if script else None
    if stage is None and name in STAGES:
        stage = name
    if stage is None:
        stage = f"script:{Path(script).name or name}"
    return stage


def _original_root(task_dir: Path) -> Path | None:
    """The session directory as the scripts saw it (from ``settings.yml``), if known."""
    settings = _read_yaml(task_dir / "settings.yml")
    if isinstance(settings, Mapping) and settings.get("run_dir"):
        return Path(str(settings["run_dir"])).parents[2]
    return None


def _locate(recorded: str, session_dir: Path, original_root: Path | None) -> Path:
    """The path of a recorded file in this session directory (which may have been moved).

    ESMValCore records absolute paths; a copied or moved session directory still holds the
    files at the same place relative to it, so paths under the session directory the scripts
    saw (``original_root``, or a folder of the same name) are mapped into ``session_dir``.
    """
    path = Path(recorded)
    if not path.is_absolute():
        return session_dir / path
    if original_root is not None and path.is_relative_to(original_root):
        return session_dir / path.relative_to(original_root)
    if path.is_relative_to(session_dir):
        return path
    if session_dir.name in path.parts:
        index = len(path.parts) - 1 - path.parts[::-1].index(session_dir.name)
        mapped = session_dir.joinpath(*path.parts[index + 1 :])
        if mapped.exists() or not path.exists():
            return mapped
    return path


def _find_aliases(
    tasks: Sequence[Task],
    records: Mapping[str, list[Path]],
    datasets: Sequence[Mapping[str, str]] = (),
) -> list[str]:
    """The dataset aliases of the run.

    The prefixes of the regression's ``{alias}_monthly_rcs.nc`` files (recorded or in its work
    folder); without a regression, the recipe's ``alias`` or ``dataset`` names that prefix an
    output file name.
    """
    aliases: set[str] = set()
    for task in tasks:
        if task.stage != "regression":
            continue
        names = [path.name for path in records.get(task.label, [])]
        work_dirs = {path.parent for path in records.get(task.label, []) if path.is_file()}
        for work_dir in work_dirs:
            names += [path.name for path in work_dir.glob(f"*{_MONTHLY_RCS}")]
        aliases |= {name[: -len(_MONTHLY_RCS)] for name in names if name.endswith(_MONTHLY_RCS)}
    aliases.discard("")
    if not aliases:
        names = [path.name for paths in records.values() for path in paths]
        candidates = {entry.get("alias") or entry.get("dataset") or "" for entry in datasets}
        candidates.discard("")
        aliases = {alias for alias in candidates if any(n.startswith(f"{alias}_") for n in names)}
    return sorted(aliases)


def _alias_of(name: str, aliases: Sequence[str]) -> str | None:
    """The longest alias that ``name`` starts with, followed by ``_``."""
    matches = [alias for alias in aliases if name.startswith(f"{alias}_")]
    return max(matches, key=len) if matches else None


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _FIGURE_SUFFIXES:
        return "figure"
    if suffix in _TABLE_SUFFIXES:
        return "table"
    if suffix in _DATA_SUFFIXES:
        return "data"
    return "other"


def _ancestors(
    record: Mapping[str, Any], session_dir: Path, root: Path | None, base: Path
) -> list[tuple[str, str | None]]:
    ancestors = []
    preproc = session_dir.resolve() / "preproc"
    for value in _as_list(record.get("ancestors")):
        path = _locate(str(value), session_dir, root)
        # ESMValCore removes the preprocessed files at the end of a run (remove_preproc_dir),
        # after a diagnostic wrote the report: they are named, never linked
        transient = path.resolve().is_relative_to(preproc)
        linked = path.is_file() and not transient
        ancestors.append((path.name, _href(path, base) if linked else None))
    return ancestors


# --------------------------------------------------------------------------------------------
# tables


def _read_csv(path: Path, max_bytes: int) -> tuple[list[str], list[list[str]]] | None:
    try:
        if path.stat().st_size > max_bytes:
            return None
        with path.open(encoding="utf-8", newline="") as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            rows = [row for row in reader if row]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        logger.warning("Could not read %s: %s", path, err)
        return None
    if header is None:
        return None
    return [column.strip() for column in header], rows


def _count_rows(path: Path) -> int:
    count, last = 0, b"\n"
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n") - 1  # without the header


def _dataset_order(datasets: Iterable[str], aliases: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(datasets))
    known = [alias for alias in aliases if alias in unique]
    multi = [name for name in _MULTI_MODEL if name in unique]
    other = sorted(set(unique) - set(known) - set(multi))
    return known + other + multi


def _csv_preview(path: Path) -> Table | None:
    """The first rows and columns of a CSV file."""
    if path.stat().st_size > _PREVIEW_MAX_BYTES:
        return None
    try:
        with path.open(encoding="utf-8", newline="") as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            rows = []
            for row in reader:
                if len(rows) == _PREVIEW_ROWS:
                    break
                if row:
                    rows.append(row)
        total = _count_rows(path)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        logger.warning("Could not read %s: %s", path, err)
        return None
    if not header:
        return None
    n_columns = len(header)
    note = ""
    if n_columns > _PREVIEW_COLUMNS:
        note = f"First {_PREVIEW_COLUMNS} of {n_columns} columns"
    header = header[:_PREVIEW_COLUMNS]
    cells = [[_format_value(cell) for cell in row[:_PREVIEW_COLUMNS]] for row in rows]
    return Table(
        title="Table preview",
        header=header,
        rows=cells,
        total_rows=max(total, len(cells)),
        header_columns=0,
        note=note,
    )


def _key_columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    """Indices of the columns that tell the rows of one dataset apart (not constant)."""
    skip = {*_IDENTITY_COLUMNS, "value", "units"}
    indices = [index for index, name in enumerate(header) if name not in skip]
    varying = {index for index in indices if len({row[index] for row in rows}) > 1}
    if "metric" in header:
        varying.add(header.index("metric"))
    return sorted(varying) or indices[:1]


def _metrics_pivot(path: Path, aliases: Sequence[str]) -> Table | None:
    """A long-format metric table (``dataset, ..., metric, value``) with datasets as columns."""
    content = _read_csv(path, _PIVOT_MAX_BYTES)
    if content is None:
        return None
    header, rows = content
    if not {"dataset", "metric", "value"} <= set(header):
        return None
    rows = [row for row in rows if len(row) == len(header)]
    if not rows:
        return None
    column = {name: index for index, name in enumerate(header)}
    keys = _key_columns(header, rows)
    datasets = _dataset_order((row[column["dataset"]] for row in rows), aliases)
    units = column.get("units")
    table: dict[tuple[str, ...], dict[str, str]] = {}
    for row in rows:
        key = tuple(row[index] for index in keys)
        if units is not None:
            key += (row[units],)
        table.setdefault(key, {})[row[column["dataset"]]] = _format_value(row[column["value"]])
    key_names = [header[index] for index in keys] + (["units"] if units is not None else [])
    items = list(table.items())
    return Table(
        title="Metrics by dataset",
        header=key_names + datasets,
        rows=[
            list(key) + [values.get(dataset, "") for dataset in datasets]
            for key, values in items[:_PIVOT_ROWS]
        ],
        total_rows=len(items),
        header_columns=len(key_names),
    )


def _comparison_tables(path: Path, aliases: Sequence[str]) -> tuple[list[Table], str]:
    """One table per metric of ``comparison_metrics.csv``; datasets as rows when it fits."""
    content = _read_csv(path, _PIVOT_MAX_BYTES)
    if content is None:
        return [], "The table is too large or unreadable to show here"
    header, rows = content
    if not {"dataset", "metric", "value"} <= set(header):
        return [], "The table is not in the long format (dataset, ..., metric, value)"
    column = {name: index for index, name in enumerate(header)}
    rows = [row for row in rows if len(row) == len(header)]
    key_names = [name for name in ("region", "biome") if name in column]
    extra = [name for name in header if name not in {*_IDENTITY_COLUMNS, *key_names,
                                                      "metric", "value", "units"}]  # fmt: skip
    groups: dict[tuple[str, str], list[list[str]]] = {}
    for row in rows:
        units = row[column["units"]] if "units" in column else ""
        groups.setdefault((row[column["metric"]], units), []).append(row)
    tables = []
    for (metric, units), group in list(groups.items())[:_METRIC_TABLES]:
        key_indices = [column[name] for name in key_names + extra]
        varying = [index for index in key_indices if len({row[index] for row in group}) > 1]
        datasets = _dataset_order((row[column["dataset"]] for row in group), aliases)
        values: dict[tuple[str, ...], dict[str, str]] = {}
        for row in group:
            key = tuple(row[index] for index in varying)
            values.setdefault(key, {})[row[column["dataset"]]] = _format_value(row[column["value"]])
        keys = list(values)
        labels = [" · ".join(part or "all" for part in key) if key else "value" for key in keys]
        title = f"{metric} ({units})" if units else metric
        constant = [
            f"{header[index]} {group[0][index]}"
            for index in key_indices
            if index not in varying and group[0][index] not in ("", "all")
        ]
        note = ("For " + ", ".join(constant)) if constant else ""
        if len(keys) <= 12:  # datasets as rows
            cells = [[dataset] + [values[key].get(dataset, "") for key in keys]
                     for dataset in datasets]  # fmt: skip
            corner = "dataset"
            table_header = [corner, *labels]
            classes = ["multi-model" if dataset in _MULTI_MODEL else "" for dataset in datasets]
        else:  # many regions and biomes: datasets as columns
            names = [header[index] for index in varying]
            cells = [[part or "all" for part in key]
                     + [values[key].get(dataset, "") for dataset in datasets]
                     for key in keys]  # fmt: skip
            table_header = [*names, *datasets]
            classes = [""] * len(cells)
        n_header = 1 if len(keys) <= 12 else max(len(varying), 1)
        tables.append(
            Table(
                title=title,
                header=table_header,
                rows=cells[:_METRIC_TABLE_ROWS],
                total_rows=len(cells),
                header_columns=n_header,
                row_classes=classes[:_METRIC_TABLE_ROWS],
                note=note,
            )
        )
    note = ""
    if len(groups) > _METRIC_TABLES:
        note = f"The first {_METRIC_TABLES} of {len(groups)} metrics are shown"
    return tables, note


# --------------------------------------------------------------------------------------------
# collecting the report


def _collect_tasks(
    session_dir: Path, recipe_scripts: Mapping[tuple[str, str], tuple[str, int, int]]
) -> list[Task]:
    run_dir = session_dir / "run"
    task_dirs = {path.parent for path in run_dir.glob("*/*/diagnostic_provenance.yml")}
    for diagnostic, name in recipe_scripts:  # scripts that ran but recorded nothing
        if (run_dir / diagnostic / name / "log.txt").is_file():
            task_dirs.add(run_dir / diagnostic / name)
    tasks = []
    for task_dir in task_dirs:
        diagnostic, name = task_dir.parent.name, task_dir.name
        script, diag_index, script_index = recipe_scripts.get(
            (diagnostic, name), ("", len(recipe_scripts), 0)
        )
        tasks.append(
            Task(
                diagnostic=diagnostic,
                name=name,
                script=script,
                stage=_stage_of(script, name),
                order=(diag_index, script_index),
                run_dir=task_dir,
                has_provenance=(task_dir / "diagnostic_provenance.yml").is_file(),
            )
        )
    rank = {stage: index for index, stage in enumerate(STAGES)}
    tasks.sort(key=lambda task: (rank.get(task.stage, len(STAGES)), task.order, task.label))
    return tasks


def _build_stages(session_dir: Path, output: Path) -> dict[str, Any]:
    """Everything the template shows, collected from the session directory."""
    base = output.parent
    run_dir = session_dir / "run"
    recipe_path = _recipe_file(run_dir)
    recipe = _read_yaml(recipe_path) if recipe_path else None
    recipe = recipe if isinstance(recipe, Mapping) else {}
    documentation = recipe.get("documentation") or {}
    documentation = documentation if isinstance(documentation, Mapping) else {}
    anchors = _Anchors()
    for reserved in ("overview", "missing", "run-files", "contents"):
        anchors(reserved)

    tasks = _collect_tasks(session_dir, _recipe_scripts(recipe))
    records: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    roots: dict[str, Path | None] = {}
    for task in tasks:
        raw = _read_yaml(task.run_dir / "diagnostic_provenance.yml") if task.has_provenance else {}
        roots[task.label] = root = _original_root(task.run_dir)
        entries = []
        for recorded, record in (raw or {}).items() if isinstance(raw, Mapping) else []:
            record = dict(record) if isinstance(record, Mapping) else {}
            entries.append((_locate(str(recorded), session_dir, root), record))
        records[task.label] = entries
    datasets = _recipe_datasets(recipe)
    paths = {label: [path for path, _ in entries] for label, entries in records.items()}
    aliases = _find_aliases(tasks, paths, datasets)

    stages: dict[str, Stage] = {}
    missing: list[MissingOutput] = []
    for task in tasks:
        if task.stage not in stages:
            if task.stage in _STAGE_TITLES:
                title, description = _STAGE_TITLES[task.stage], _STAGE_DESCRIPTIONS[task.stage]
            else:
                title = f"Script {task.stage.removeprefix('script:')}"
                description = "A script that is not one of the carbon-biomes stages."
            stages[task.stage] = Stage(
                key=task.stage,
                title=title,
                description=description,
                anchor=anchors(task.stage.removeprefix("script:")),
            )
        stage = stages[task.stage]
        stage.tasks.append(task)
        for name in ("log.txt", "settings.yml", "diagnostic_provenance.yml"):
            if (task.run_dir / name).is_file():
                task.links.append((name, _href(task.run_dir / name, base)))
        groups: dict[str | None, DatasetGroup] = {}
        for path, record in records[task.label]:
            caption = str(record.get("caption") or "")
            if not path.is_file():
                missing.append(MissingOutput(stage.title, task.label, str(path), caption))
                task.n_missing += 1
                continue
            alias = _alias_of(path.name, aliases)
            if alias not in groups:
                groups[alias] = DatasetGroup(
                    alias=alias,
                    anchor=anchors(stage.anchor, task.name, alias or "all-datasets"),
                )
            item = OutputFile(
                path=path,
                href=_href(path, base),
                kind=_kind(path),
                caption=caption,
                record=record,
                size=path.stat().st_size,
                anchor=anchors("file", path.stem),
                ancestors=_ancestors(record, session_dir, roots[task.label], base),
            )
            if item.kind == "figure":
                if path.suffix.lower() == ".png":
                    item.width, item.height = _png_size(path)
                groups[alias].figures.append(item)
                continue
            if item.kind == "table":
                if path.name == _COMPARISON_METRICS and stage.metric_file is None:
                    stage.metric_file = item
                    stage.metric_tables, stage.metric_note = _comparison_tables(path, aliases)
                    stage.metric_anchor = anchors(stage.anchor, "metrics")
                elif path.name.endswith("_metrics.csv"):
                    item.preview = _metrics_pivot(path, aliases) or _csv_preview(path)
                else:
                    item.preview = _csv_preview(path)
            groups[alias].files.append(item)
        for group in groups.values():
            group.files.sort(key=lambda item: _KIND_ORDER[item.kind])  # stable: record order
        task.groups = [groups[alias] for alias in aliases if alias in groups]
        task.groups += [group for key, group in groups.items() if key not in aliases]

    for stage in stages.values():  # a comparison table that no record names
        if stage.key != "comparison" or stage.metric_file is not None:
            continue
        for task in stage.tasks:
            candidate = session_dir / "work" / task.diagnostic / task.name / _COMPARISON_METRICS
            if candidate.is_file():
                stage.metric_file = OutputFile(
                    path=candidate,
                    href=_href(candidate, base),
                    kind="table",
                    caption="",
                    record={},
                    size=candidate.stat().st_size,
                )
                stage.metric_tables, stage.metric_note = _comparison_tables(candidate, aliases)
                stage.metric_anchor = anchors(stage.anchor, "metrics")
                break
    for number, stage in enumerate(stages.values(), start=1):
        stage.number = number

    log = _log_info(run_dir / "main_log.txt")
    all_paths = [path for entries in records.values() for path, _ in entries]
    regression_first = sorted(all_paths, key=lambda path: not path.name.endswith(_MONTHLY_RCS))
    versions = {
        "ESMValCore": log.get("esmvalcore"),
        "carbon-biomes (run)": _carbon_biomes_version(regression_first[:20]),
        "carbon-biomes (report)": __version__,
    }
    run_files = []
    candidates = [recipe_path] if recipe_path else []
    candidates += sorted(run_dir.glob("recipe_*_filled.yml"))
    candidates += [run_dir / "main_log.txt", run_dir / "main_log_debug.txt",
                   session_dir / "index.html"]  # fmt: skip
    labels = {
        "main_log.txt": "ESMValCore log",
        "main_log_debug.txt": "ESMValCore debug log",
        "index.html": "ESMValCore's index.html (loads its styles from the web)",
    }
    for path in dict.fromkeys(candidates):
        if path is not None and path.is_file() and path != output:
            label = labels.get(path.name)
            if label is None:
                label = "recipe, filled in" if path.stem.endswith("_filled") else "recipe copy"
            run_files.append((path.name, _href(path, base), label))

    title = str(documentation.get("title") or (recipe_path.stem if recipe_path else ""))
    return {
        "title": title or session_dir.name,
        "description": _paragraphs(documentation.get("description")),
        "authors": [str(a) for a in _as_list(documentation.get("authors"))],
        "references": [str(r) for r in _as_list(documentation.get("references"))],
        "recipe_name": recipe_path.name if recipe_path else None,
        "session_name": session_dir.name,
        "session_dir": str(session_dir),
        "start": log.get("start") or _session_time(session_dir),
        "end": log.get("end"),
        "duration": log.get("duration"),
        "status": log.get("status"),
        "versions": {key: value for key, value in versions.items() if value},
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "datasets": datasets,
        "dataset_columns": _dataset_columns(datasets),
        "aliases": aliases,
        "stages": list(stages.values()),
        "missing": missing,
        "run_files": run_files,
        "n_figures": sum(stage.n_figures for stage in stages.values()),
        "n_files": sum(stage.n_files for stage in stages.values()),
    }


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["filesize"] = _format_size
    environment.filters["inline_code"] = _inline_code
    return environment


def render_report(session_dir: str | os.PathLike[str], output: str | os.PathLike[str]) -> str:
    """Render the HTML report of a session directory, with links relative to ``output``.

    Parameters
    ----------
    session_dir
        The ESMValCore session (output) directory, ``<output_dir>/<recipe>_<date>_<time>``.
    output
        Where the report will be written; links and image sources are relative to its folder.

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    FileNotFoundError
        If ``session_dir`` has no ``run`` folder (it is not an ESMValCore session directory).
    """
    session = Path(session_dir).resolve()
    if not (session / "run").is_dir():
        msg = f"{session} is not an ESMValCore session directory: it has no run/ folder"
        raise FileNotFoundError(msg)
    context = _build_stages(session, Path(output).resolve())
    return _environment().get_template("report.html.j2").render(**context)


def write_report(
    session_dir: str | os.PathLike[str], output: str | os.PathLike[str] | None = None
) -> Path:
    """Write the self-contained HTML report of an ESMValCore run of the carbon-biomes scripts.

    The report shows, per stage in pipeline order and per dataset, every recorded figure with
    its caption and links every table, NetCDF and other file; the comparison metrics are
    rendered as tables. Records whose file is missing are listed in a note. Styles are inline
    and paths relative, so the report needs no network and no server.

    Parameters
    ----------
    session_dir
        The ESMValCore session (output) directory, ``<output_dir>/<recipe>_<date>_<time>``.
    output
        The HTML file to write (default: ``session_dir/carbon_biomes_report.html``); its
        folder is created if needed.

    Returns
    -------
    pathlib.Path
        The absolute path of the report.

    Raises
    ------
    FileNotFoundError
        If ``session_dir`` is not an ESMValCore session directory.
    """
    session = Path(session_dir).resolve()
    target = Path(output).resolve() if output is not None else session / REPORT_NAME
    html = render_report(session, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    logger.info("Wrote %s", target)
    return target
