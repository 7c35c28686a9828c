"""The ESMValTool diagnostic-script contract, without depending on the ``esmvaltool`` package.

ESMValCore runs a diagnostic as ``python SCRIPT settings.yml``. ``settings.yml`` holds the
recipe's script options plus ``input_files`` (``metadata.yml`` files that describe each
preprocessed file), ``run_dir``, ``work_dir``, ``plot_dir`` and a few more keys. The script
owes ESMValCore a ``run_dir/diagnostic_provenance.yml`` with one record per output file.

This module mirrors the names and behaviour of ``esmvaltool.diag_scripts.shared``
(:func:`run_diagnostic`, :func:`group_metadata`, :func:`select_metadata`,
:class:`ProvenanceLogger`) so that scripts read as ESMValTool users expect.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from carbon_biomes.core.errors import DiagnosticError
from carbon_biomes.workflow.provenance import ProvenanceLogger

__all__ = [
    "DiagnosticError",
    "ancestor_folders",
    "ProvenanceLogger",
    "group_metadata",
    "load_settings",
    "run_diagnostic",
    "select_metadata",
    "sorted_metadata",
]

logger = logging.getLogger(__name__)


def load_settings(settings_file: str | os.PathLike) -> dict[str, Any]:
    """Read ``settings.yml`` and every ``metadata.yml`` it lists.

    Parameters
    ----------
    settings_file
        Path to the ``settings.yml`` written by ESMValCore.

    Returns
    -------
    dict
        The settings, with ``input_data`` added: a mapping from each preprocessed file's path to
        its metadata (dataset, short_name, units, alias, ...), in the order ESMValCore listed them.
    """
    settings_file = Path(settings_file)
    with settings_file.open(encoding="utf-8") as file:
        cfg = yaml.safe_load(file)
    if not isinstance(cfg, dict):
        raise DiagnosticError(f"{settings_file} does not hold a mapping of settings")
    for key in ("run_dir", "work_dir", "plot_dir"):
        if key not in cfg:
            raise DiagnosticError(f"{settings_file} has no '{key}' entry")
    input_data: dict[str, dict[str, Any]] = {}
    for metadata_file in cfg.get("input_files", []):
        metadata_path = Path(metadata_file)
        if metadata_path.is_dir():
            metadata_path = metadata_path / "metadata.yml"
        if metadata_path.name != "metadata.yml" or not metadata_path.is_file():
            continue  # output folder of an ancestor diagnostic without metadata
        with metadata_path.open(encoding="utf-8") as file:
            input_data.update(yaml.safe_load(file) or {})
    cfg["input_data"] = input_data
    cfg.setdefault("output_file_type", "png")
    return cfg


@contextlib.contextmanager
def run_diagnostic(settings_file: str | os.PathLike | None = None) -> Iterator[dict[str, Any]]:
    """Set up a diagnostic run: settings, output folders and logging.

    Used as ``with run_diagnostic() as cfg: main(cfg)``. Reads ``settings.yml`` (by default the
    first command-line argument), creates ``work_dir`` and ``plot_dir``, refuses to run when
    ``run_dir`` already holds a provenance file (old output would be mixed with new), sets the
    log level from the settings and logs the run time.

    Parameters
    ----------
    settings_file
        Path to ``settings.yml``; default ``sys.argv[1]``.

    Yields
    ------
    dict
        The settings as returned by :func:`load_settings`.
    """
    if settings_file is None:
        if len(sys.argv) < 2:
            raise SystemExit(f"usage: {sys.argv[0]} settings.yml")
        settings_file = sys.argv[1]
    cfg = load_settings(settings_file)
    logging.basicConfig(
        format="%(asctime)s [%(process)d] %(levelname)-8s %(name)s: %(message)s",
        level=str(cfg.get("log_level", "info")).upper(),
        force=True,
    )
    provenance_file = Path(cfg["run_dir"]) / "diagnostic_provenance.yml"
    if provenance_file.exists():
        raise DiagnosticError(
            f"{provenance_file} already exists: this run directory holds output of an earlier "
            "run. Remove it or start a new run."
        )
    for key in ("work_dir", "plot_dir"):
        Path(cfg[key]).mkdir(parents=True, exist_ok=True)
    script = Path(sys.argv[0]).name
    logger.info("Starting diagnostic %s with settings %s", script, settings_file)
    start = time.perf_counter()
    yield cfg
    logger.info("Diagnostic %s finished in %.1f s", script, time.perf_counter() - start)


def select_metadata(metadata: Iterable[dict[str, Any]], **attributes: Any) -> list[dict[str, Any]]:
    """Return the metadata entries whose attributes all equal the given values.

    Parameters
    ----------
    metadata
        Metadata dictionaries, e.g. ``cfg["input_data"].values()``.
    **attributes
        Attribute names and required values, e.g. ``short_name="tos"``.

    Returns
    -------
    list of dict
    """
    return [
        item
        for item in metadata
        if all(key in item and item[key] == value for key, value in attributes.items())
    ]


def sorted_metadata(metadata: Iterable[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """Return metadata sorted by one attribute (entries without it first)."""
    return sorted(metadata, key=lambda item: (sort in item, str(item.get(sort, ""))))


def group_metadata(
    metadata: Iterable[dict[str, Any]], attribute: str, sort: str | bool | None = None
) -> dict[Any, list[dict[str, Any]]]:
    """Group metadata entries by the value of one attribute.

    Parameters
    ----------
    metadata
        Metadata dictionaries.
    attribute
        Attribute to group by, e.g. ``"dataset"``.
    sort
        ``True`` to sort the groups by key; an attribute name to sort the entries within each
        group by that attribute.

    Returns
    -------
    dict
        Attribute value -> list of metadata entries, in first-seen order (or sorted).
    """
    groups: dict[Any, list[dict[str, Any]]] = {}
    for item in metadata:
        groups.setdefault(item.get(attribute), []).append(item)
    if isinstance(sort, str):
        groups = {key: sorted_metadata(items, sort) for key, items in groups.items()}
    elif sort:
        groups = dict(sorted(groups.items(), key=lambda pair: str(pair[0])))
    return groups


def ancestor_folders(cfg: dict[str, Any]) -> list[Path]:
    """Output folders (work_dir) of the ancestor diagnostic scripts listed in ``input_files``."""
    return [Path(path) for path in cfg.get("input_files", []) if Path(path).is_dir()]


class DatasetFailures(dict):
    """The datasets of a script whose input is bad (alias -> error message).

    A script records a dataset's :class:`DiagnosticError` and goes on with the others; at the
    end :meth:`raise_if_any` fails the script naming them, while the products of the good
    datasets are complete.
    """

    def record(self, alias: str, error: Exception) -> None:
        """Log and remember the failure of one dataset."""
        logger.error("%s: dataset failed, going on with the others: %s", alias, error)
        self[alias] = str(error)

    def good(self, aliases: Iterable[str]) -> list[str]:
        """The aliases that did not fail, in order."""
        return [alias for alias in aliases if alias not in self]

    def raise_if_any(self, n_datasets: int) -> None:
        """Fail with the list of failed datasets, if any."""
        if self:
            raise DiagnosticError(
                f"{len(self)} of {n_datasets} datasets failed ({', '.join(self)}); the "
                "products of the others are complete. " + " ".join(self.values())
            )

