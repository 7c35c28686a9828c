"""The comparison metrics as a CMEC metric bundle (plain JSON).

The CMIP Rapid Evaluation Framework (climate-ref) and its ESMValTool provider exchange scalar
metrics as CMEC metric bundles: a JSON object with

``DIMENSIONS``
    ``json_structure`` (the nesting order of ``RESULTS``, here ``source_id``, ``region``,
    ``biome``, ``metric``) and, for every dimension, an object whose keys are the dimension's
    values and whose values describe them (``long_name``; metrics also ``units``);
``RESULTS``
    the values, nested in that order: ``RESULTS[source_id][region][biome][metric] = value``;
``PROVENANCE``, ``DISCLAIMER``, ``NOTES``
    free-form objects.

The rules the framework's validator (``climate_ref_core.pycmec.metric.CMECMetric``) applies, and
that :func:`metric_bundle` therefore guarantees: every level above the last holds *every* value
of its dimension (so each source_id has every region, each region every biome; a combination
without metrics is an empty object), the last level holds a subset of the metrics, values are
finite numbers (JSON has no NaN: non-finite and missing values are left out), and no value is
named ``attributes`` (a key the format reserves at every level).

Whole-map metrics (``biome`` empty in the comparison table) are filed under the biome
:data:`ALL_BIOMES`. The multi-model rows (``MultiModelMean``, ``MultiModelSpread``) are ordinary
source_ids.

This module writes plain JSON and does not import climate-ref (a test dependency only, used to
validate the bundles in the tests).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ALL_BIOMES",
    "JSON_STRUCTURE",
    "METRIC_DESCRIPTIONS",
    "metric_bundle",
    "write_metric_bundle",
]

#: Nesting order of ``RESULTS``.
JSON_STRUCTURE: tuple[str, ...] = ("source_id", "region", "biome", "metric")

#: The biome of whole-map metrics (rows with an empty ``biome``).
ALL_BIOMES = "all"

#: Keys every row must have (``model``, ``ensemble`` and ``exp`` are optional).
_REQUIRED = ("dataset", "region", "biome", "metric", "value", "units")

#: A key the CMEC format reserves at every level of ``RESULTS``.
_RESERVED = "attributes"

#: Long names of the comparison metrics (others are described by their name).
METRIC_DESCRIPTIONS: dict[str, str] = {
    "agreement": "area-weighted fraction of the boxes whose biome agrees with the reference's",
    "kappa": "Cohen's kappa of the biome labels against the reference (area-weighted)",
    "adjusted_rand": "adjusted Rand index of the biome labels against the reference",
    "jaccard": "Jaccard index (intersection over union) of the biome with the reference's",
    "f1": "F1 score of the biome against the reference's",
    "area_fraction": "mean coverage of the biome, percent of the region's classified ocean",
    "area_fraction_difference": "area_fraction minus the reference's",
    "coverage_trend": "trend of the biome's coverage, percentage points per decade",
    "coverage_trend_difference": "coverage_trend minus the reference's",
    "coverage_trend_difference_significant": "1 where the trend difference is significant",
    "seasonal_cycle_rmse": "RMSE of the mean seasonal cycle of coverage against the reference",
    "centroid_distance": "distance of the biome's centroid from the common centroid "
    "(standardized regression coefficients)",
}

_SOURCE_DESCRIPTIONS = {
    "MultiModelMean": "multi-model mean over the models (the reference excluded)",
    "MultiModelSpread": "multi-model spread: standard deviation over the models (ddof 1)",
}

_DISCLAIMER = (
    "Metrics of marine carbon biomes detected and tracked with the carbon-biomes plugin "
    "(after Mohanty et al., 2025, https://doi.org/10.5194/os-21-587-2025). They depend on the "
    "recipe's settings (box size, thresholds, reference month, common labels) and on the "
    "observation-based reference; they are diagnostics, not an endorsed evaluation."
)


def metric_bundle(
    rows: Iterable[Mapping[str, Any]],
    *,
    provenance: Mapping[str, Any] | None = None,
    disclaimer: str | None = None,
) -> dict[str, Any]:
    """Convert long-format comparison metric rows into a CMEC metric bundle.

    Parameters
    ----------
    rows
        Mappings with the keys ``dataset`` (the source_id: alias, ``MultiModelMean`` or
        ``MultiModelSpread``), ``region``, ``biome`` (``""``: the whole map), ``metric``,
        ``value`` (a number or a string that parses as one; ``None``, ``""``, NaN and
        infinities are left out) and ``units``; ``model``, ``ensemble`` and ``exp``, when
        present, describe the source_id.
    provenance
        Extra entries of ``PROVENANCE`` (JSON-serializable), e.g. the recipe and the datasets.
    disclaimer
        Text of ``DISCLAIMER`` (default: a note on what the metrics are).

    Returns
    -------
    dict
        The bundle (``DIMENSIONS``, ``RESULTS``, ``PROVENANCE``, ``DISCLAIMER``, ``NOTES``),
        JSON-serializable with ``allow_nan=False``; equal rows in any order give an equal
        bundle.

    Raises
    ------
    ValueError
        Naming the row (its position and content): a row that is not a mapping, a missing
        key, an empty dataset, region or metric, a value that is not a number, the reserved
        name ``attributes`` or the biome name ``all`` used as a value, two rows for one
        (dataset, region, biome, metric), one metric with two units, or one dataset with two
        model/ensemble/exp descriptions.
    """
    sources: dict[str, dict[str, str]] = {}
    regions: set[str] = set()
    biomes: set[str] = set()
    units: dict[str, tuple[str, int]] = {}
    values: dict[tuple[str, str, str, str], float] = {}
    seen: dict[tuple[str, str, str, str], int] = {}
    omitted = 0
    count = 0
    for index, row in enumerate(rows):
        count += 1
        where = _describe(index, row)
        if not isinstance(row, Mapping):
            raise ValueError(f"{where}: a row must be a mapping of column names to values")
        missing = [key for key in _REQUIRED if key not in row]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        source = _name(row, "dataset", where)
        region = _name(row, "region", where)
        metric = _name(row, "metric", where)
        biome = _biome(row, where)
        unit = row["units"]
        if not isinstance(unit, str):
            raise ValueError(f"{where}: units must be a string, got {unit!r}")
        key = (source, region, biome, metric)
        if key in seen:
            raise ValueError(
                f"{where}: a second row for dataset {source!r}, region {region!r}, biome "
                f"{biome!r}, metric {metric!r} (the first is row {seen[key]})"
            )
        seen[key] = index
        known = units.setdefault(metric, (unit, index))
        if known[0] != unit:
            raise ValueError(
                f"{where}: metric {metric!r} in units {unit!r}, but row {known[1]} gives "
                f"{known[0]!r}"
            )
        description = {name: str(row[name]) for name in ("model", "ensemble", "exp")
                       if row.get(name) not in (None, "")}  # fmt: skip
        previous = sources.setdefault(source, description)
        if previous != description:
            raise ValueError(
                f"{where}: dataset {source!r} is described as {description}, but an earlier "
                f"row describes it as {previous}"
            )
        regions.add(region)
        biomes.add(biome)
        value = _number(row["value"], where)
        if value is None:
            omitted += 1
            continue
        values[key] = value

    results: dict[str, Any] = {
        source: {region: {biome: {} for biome in sorted(biomes)} for region in sorted(regions)}
        for source in sorted(sources)
    }
    for (source, region, biome, metric), value in values.items():
        results[source][region][biome][metric] = value

    dimensions: dict[str, Any] = {
        "json_structure": list(JSON_STRUCTURE),
        "source_id": {
            source: _source_description(source, sources[source]) for source in sorted(sources)
        },
        "region": {region: {"long_name": region} for region in sorted(regions)},
        "biome": {biome: {"long_name": _biome_long_name(biome)} for biome in sorted(biomes)},
        "metric": {
            metric: {
                "long_name": METRIC_DESCRIPTIONS.get(metric, metric),
                "units": units[metric][0],
            }
            for metric in sorted(units)
        },
    }
    bundle_provenance: dict[str, Any] = {
        "producer": "carbon-biomes",
        "version": _version(),
        "product": "comparison metrics of marine carbon biomes",
    }
    if provenance:
        bundle_provenance.update({str(key): value for key, value in provenance.items()})
    try:
        json.dumps(bundle_provenance, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"provenance is not JSON-serializable: {exc}") from None
    return {
        "DIMENSIONS": dimensions,
        "RESULTS": results,
        "PROVENANCE": bundle_provenance,
        "DISCLAIMER": {"text": _DISCLAIMER if disclaimer is None else str(disclaimer)},
        "NOTES": {
            "biome": f"{ALL_BIOMES!r} holds the metrics of the whole map of a region, not of "
            "one biome",
            "missing_values": "values that are missing or not finite (NaN) are left out; "
            "RESULTS has every source_id, region and biome, possibly without metrics",
            "rows": count,
            "values": len(values),
            "omitted_values": omitted,
        },
    }


def write_metric_bundle(
    path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], **kwargs: Any
) -> Path:
    """Write :func:`metric_bundle` of ``rows`` to ``path`` as JSON, atomically.

    The file is written under a temporary name in the same folder and renamed, so a reader never
    sees a partial bundle; keys are sorted and the layout is fixed, so the same rows give the
    same bytes.

    Parameters
    ----------
    path
        The JSON file (its folder is created).
    rows
        Long-format metric rows (see :func:`metric_bundle`).
    **kwargs
        ``provenance`` and ``disclaimer`` of :func:`metric_bundle`.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    text = json.dumps(metric_bundle(rows, **kwargs), indent=2, sort_keys=True, allow_nan=False,
                      ensure_ascii=False) + "\n"  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial",
                                         dir=path.parent)  # fmt: skip
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _describe(index: int, row: Any) -> str:
    try:
        content = dict(row)
    except (TypeError, ValueError):
        content = row
    return f"metric row {index} ({content!r})"


def _name(row: Mapping[str, Any], key: str, where: str) -> str:
    value = row[key]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {key} must be a non-empty string, got {value!r}")
    if value == _RESERVED:
        raise ValueError(f"{where}: {key} {value!r} is a name the CMEC format reserves")
    return value


def _biome(row: Mapping[str, Any], where: str) -> str:
    value = row["biome"]
    if value is None or value == "":
        return ALL_BIOMES
    if not isinstance(value, str):
        raise ValueError(f"{where}: biome must be a string, got {value!r}")
    if value in (ALL_BIOMES, _RESERVED):
        raise ValueError(
            f"{where}: biome {value!r} is reserved (whole-map metrics have an empty biome)"
        )
    return value


def _number(value: Any, where: str) -> float | None:
    """The row's value as a float; ``None`` when missing or not finite."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{where}: value {value!r} is not a number")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{where}: value {value!r} is not a number") from None
    elif isinstance(value, numbers.Real):
        number = float(value)
    else:
        raise ValueError(f"{where}: value {value!r} is not a number")
    return number if math.isfinite(number) else None


def _source_description(source: str, description: Mapping[str, str]) -> dict[str, str]:
    entry = {"long_name": _SOURCE_DESCRIPTIONS.get(source, source)}
    entry.update(description)
    return entry


def _biome_long_name(biome: str) -> str:
    return "all biomes (metric of the whole map)" if biome == ALL_BIOMES else biome


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("carbon-biomes")
    except PackageNotFoundError:  # a source tree that is not installed
        return "unknown"
