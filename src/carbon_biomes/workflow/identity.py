"""Dataset identity: one identifier per input dataset, unique within a recipe.

ESMValCore gives every dataset of a recipe an ``alias`` built from the facets that differ between
datasets (for example ``SYNTH-ESM-A_r1i1p1f1`` and ``SYNTH-ESM-A_r2i1p1f1`` for two members), so
two ensemble members or two experiments of one model never collide. The alias names the files,
groups the inputs, finds the ancestor products and fills the ``dataset`` column of every table;
the model, ensemble member and experiment travel with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from carbon_biomes.core.errors import DiagnosticError

__all__ = ["DatasetIdentity", "group_by_dataset"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class DatasetIdentity:
    """Who a dataset is.

    Attributes
    ----------
    alias
        The recipe-unique identifier (ESMValCore's ``alias``).
    dataset
        The model or product name (``dataset`` facet).
    project, exp, ensemble, grid
        The remaining facets (empty when the project has none).
    """

    alias: str
    dataset: str
    project: str = ""
    exp: str = ""
    ensemble: str = ""
    grid: str = ""

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> DatasetIdentity:
        """The identity of a preprocessed file from its ``metadata.yml`` entry."""
        dataset = str(metadata.get("dataset", ""))

        def facet(key: str) -> str:
            value = metadata.get(key, "")
            return "-".join(map(str, value)) if isinstance(value, list | tuple) else str(value)

        return cls(
            alias=str(metadata.get("alias") or dataset),
            dataset=dataset,
            project=facet("project"),
            exp=facet("exp"),
            ensemble=facet("ensemble"),
            grid=facet("grid"),
        )

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any]) -> DatasetIdentity:
        """The identity written into a product's global attributes by :meth:`attributes`."""
        try:
            return cls(
                alias=str(attributes["dataset_alias"]),
                dataset=str(attributes["dataset"]),
                project=str(attributes.get("project", "")),
                exp=str(attributes.get("experiment", "")),
                ensemble=str(attributes.get("ensemble", "")),
                grid=str(attributes.get("grid", "")),
            )
        except KeyError as exc:
            raise DiagnosticError(f"the file has no {exc.args[0]} attribute") from None

    def attributes(self) -> dict[str, str]:
        """Global attributes that identify the dataset of a product."""
        return {
            "dataset_alias": self.alias,
            "dataset": self.dataset,
            "project": self.project,
            "experiment": self.exp,
            "ensemble": self.ensemble,
            "grid": self.grid,
        }

    @property
    def file_stem(self) -> str:
        """The alias made safe for a file name."""
        return _UNSAFE.sub("_", self.alias)

    def table_columns(self) -> dict[str, str]:
        """The identity columns of a long-format table row."""
        return {"dataset": self.alias, "model": self.dataset, "ensemble": self.ensemble,
                "exp": self.exp}  # fmt: skip

    def describe(self) -> str:
        """Human-readable identity for captions, e.g. ``SYNTH-ESM-A (historical, r1i1p1f1)``."""
        facets = ", ".join(f for f in (self.exp, self.ensemble) if f)
        return f"{self.dataset} ({facets})" if facets else self.dataset

    def to_dict(self) -> dict[str, str]:
        """As a dictionary."""
        return asdict(self)


#: Columns of the identity in every long-format table, in order.
IDENTITY_COLUMNS: tuple[str, ...] = ("dataset", "model", "ensemble", "exp")


def _assembled(parts: list[DatasetIdentity]) -> DatasetIdentity:
    """One identity for the products that one alias assembles (e.g. carbon and SST products)."""

    def joined(key: str) -> str:
        values = list(dict.fromkeys(getattr(part, key) for part in parts if getattr(part, key)))
        return "+".join(values)

    return DatasetIdentity(
        alias=parts[0].alias,
        dataset=joined("dataset"),
        project=joined("project"),
        exp=joined("exp"),
        ensemble=joined("ensemble"),
        grid=joined("grid"),
    )


def group_by_dataset(
    input_data: Iterable[Mapping[str, Any]],
) -> dict[DatasetIdentity, list[dict[str, Any]]]:
    """Group the preprocessed files of a script by dataset identity (sorted by alias).

    One alias may assemble several products when each variable comes from one of them: an
    observation-based reference with the carbon variables of one product and SST of another
    gets the alias set in the recipe on both dataset entries. Its identity then names all of
    them (``dataset`` ``PRODUCT-A+PRODUCT-B``, projects likewise, in the order met).

    Raises
    ------
    DiagnosticError
        When one alias gives a variable twice (two datasets under one alias, e.g. two ensemble
        members with the same alias set in the recipe), or when there is no input at all.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    parts: dict[str, list[DatasetIdentity]] = {}
    sources: dict[tuple[str, str], DatasetIdentity] = {}
    for item in input_data:
        identity = DatasetIdentity.from_metadata(item)
        variable = str(item.get("variable_group") or item.get("short_name", ""))
        known = sources.get((identity.alias, variable))
        if known is not None:
            raise DiagnosticError(
                f"the alias {identity.alias} gives the variable {variable} twice "
                f"({known.describe()} and {identity.describe()}); give the datasets distinct "
                "aliases in the recipe"
            )
        sources[identity.alias, variable] = identity
        groups.setdefault(identity.alias, []).append(dict(item))
        if identity not in parts.setdefault(identity.alias, []):
            parts[identity.alias].append(identity)
    if not groups:
        raise DiagnosticError("no input data: the recipe gives this script no variables")
    return {_assembled(parts[alias]): groups[alias] for alias in sorted(groups)}
