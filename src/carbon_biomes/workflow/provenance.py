"""Provenance records for every output file, in the form ESMValCore expects.

A diagnostic writes ``run_dir/diagnostic_provenance.yml``: a mapping from each output path to a
record with a ``caption``, ``ancestors`` (the input files it was computed from, a list) and tags
(``authors``, ``references``, ``domains``, ``realms``, ``themes``, ``plot_types``,
``statistics``) that ESMValCore validates against ``config-references.yml``. ESMValCore then
writes ``*_provenance.xml``, ``*_citation.bibtex`` and ``index.html`` for every recorded file.
Singular keys (``domain``, ``plot_type``) are silently ignored by ESMValCore, so they are refused
here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULT_AUTHORS",
    "DEFAULT_REFERENCES",
    "TAG_KEYS",
    "ProvenanceLogger",
    "missing_records",
    "provenance_record",
]

logger = logging.getLogger(__name__)

DEFAULT_AUTHORS: tuple[str, ...] = ("carbon_biomes_dev",)
DEFAULT_REFERENCES: tuple[str, ...] = ("mohanty25os",)
TAG_KEYS: tuple[str, ...] = (
    "authors",
    "references",
    "domains",
    "realms",
    "themes",
    "plot_types",
    "statistics",
    "projects",
)
_SINGULAR_KEYS = {key[:-1]: key for key in TAG_KEYS} | {"plot_type": "plot_types"}


def provenance_record(
    caption: str,
    ancestors: Iterable[str | os.PathLike],
    *,
    authors: Sequence[str] = DEFAULT_AUTHORS,
    references: Sequence[str] = DEFAULT_REFERENCES,
    domains: Sequence[str] = ("global",),
    realms: Sequence[str] = ("ocnBgchem",),
    themes: Sequence[str] = ("carbon", "bgchem"),
    plot_types: Sequence[str] = (),
    statistics: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """Build one provenance record.

    Parameters
    ----------
    caption
        What the file shows or holds: dataset, period or month, method settings.
    ancestors
        Input files the output was computed from (preprocessed files or earlier outputs).
    authors, references, domains, realms, themes, plot_types, statistics
        Tags from ``config-references.yml`` (references: ``references/KEY.bibtex``).
    **extra
        Further entries stored with the record (e.g. ``long_names``); singular forms of the tag
        keys are refused because ESMValCore would ignore them.

    Returns
    -------
    dict
        The record, with lists for every tag key and ``ancestors``.

    Raises
    ------
    ValueError
        On an empty caption or a singular tag key.
    """
    if not caption or not caption.strip():
        raise ValueError("a provenance record needs a non-empty caption")
    for key in extra:
        if key in _SINGULAR_KEYS:
            raise ValueError(
                f"provenance key '{key}' is ignored by ESMValCore: use '{_SINGULAR_KEYS[key]}'"
            )
    record: dict[str, Any] = {
        "caption": " ".join(caption.split()),
        "ancestors": sorted({str(path) for path in ancestors}),
        "authors": list(authors),
        "references": list(references),
        "domains": list(domains),
        "realms": list(realms),
        "themes": list(themes),
    }
    if plot_types:
        record["plot_types"] = list(plot_types)
    if statistics:
        record["statistics"] = list(statistics)
    record.update(extra)
    return record


class ProvenanceLogger:
    """Collect provenance records and write ``run_dir/diagnostic_provenance.yml``.

    The file is rewritten after every record, so that records of the outputs written before a
    failure are kept.

    Parameters
    ----------
    run_dir
        The diagnostic's ``run_dir`` (from the settings).

    Examples
    --------
    >>> with ProvenanceLogger(cfg["run_dir"]) as provenance:  # doctest: +SKIP
    ...     provenance.log(path, record)
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / "diagnostic_provenance.yml"
        self.records: dict[str, dict[str, Any]] = {}

    def __enter__(self) -> ProvenanceLogger:
        """Start collecting."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Write what was collected."""
        self._write()

    def log(self, filename: str | os.PathLike, record: dict[str, Any]) -> None:
        """Record the provenance of one output file.

        Parameters
        ----------
        filename
            The output file; it must exist (ESMValCore fails the run otherwise).
        record
            A record from :func:`provenance_record`.

        Raises
        ------
        FileNotFoundError
            When the output file does not exist.
        ValueError
            When the file already has a record or the record has no caption or ancestors list.
        """
        path = Path(filename).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"cannot record provenance of missing output {path}")
        key = str(path)
        if key in self.records:
            raise ValueError(f"provenance of {path} was already recorded")
        if not record.get("caption") or not isinstance(record.get("ancestors"), list):
            raise ValueError(f"provenance record of {path} needs a caption and an ancestors list")
        self.records[key] = record
        logger.debug("Provenance recorded for %s", path)
        self._write()

    def record(
        self,
        filename: str | os.PathLike,
        caption: str,
        ancestors: Iterable[str | os.PathLike],
        **tags: Any,
    ) -> Path:
        """Record an output from its caption, ancestors and tags (see :func:`provenance_record`).

        Returns
        -------
        Path
            The output file.
        """
        self.log(filename, provenance_record(caption, ancestors, **tags))
        return Path(filename)

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".yml.tmp")
        with tmp.open("w", encoding="utf-8") as file:
            yaml.safe_dump(self.records, file, sort_keys=True, allow_unicode=True)
        tmp.replace(self.path)


def missing_records(
    provenance_file: str | os.PathLike, *output_dirs: str | os.PathLike
) -> list[Path]:
    """List the files under ``output_dirs`` that have no record in a provenance file.

    Parameters
    ----------
    provenance_file
        A ``diagnostic_provenance.yml``.
    *output_dirs
        Folders whose files must all be recorded (e.g. ``work_dir`` and ``plot_dir``).

    Returns
    -------
    list of Path
        Files without a record (empty when every output is recorded).
    """
    with Path(provenance_file).open(encoding="utf-8") as file:
        recorded = {str(Path(name).resolve()) for name in (yaml.safe_load(file) or {})}
    missing = []
    for folder in output_dirs:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and str(path.resolve()) not in recorded:
                missing.append(path)
    return missing
