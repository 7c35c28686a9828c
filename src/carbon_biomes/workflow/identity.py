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


def group_by_dataset(
    input_data: Iterable[Mapping[str, Any]],
) -> dict[DatasetIdentity, list[dict[str, Any]]]:
    """Group the preprocessed files of a script by dataset identity (sorted by alias).

    Raises
    ------
    DiagnosticError
        When one alias stands for two different datasets (it should never: the alias is
        ESMValCore's recipe-unique name), or when there is no input at all.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    identities: dict[str, DatasetIdentity] = {}
    for item in input_data:
        identity = DatasetIdentity.from_metadata(item)
        known = identities.setdefault(identity.alias, identity)
        if known != identity:
            raise DiagnosticError(
                f"the alias {identity.alias} names two datasets ({known.describe()} and "
                f"{identity.describe()}); give them distinct aliases in the recipe"
            )
        groups.setdefault(identity.alias, []).append(dict(item))
    if not groups:
        raise DiagnosticError("no input data: the recipe gives this script no variables")
    return {identities[alias]: groups[alias] for alias in sorted(groups)}
