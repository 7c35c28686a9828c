"""Automatic biome names from each biome's regression-coefficient signature and location.

The paper names its seven biomes by hand (docs/method.md §2.8): ICE (sea-ice covered), SUBTR
(subtropical, thermally driven: large positive SST slope) and SUBP+UP (subpolar and upwelling,
non-thermally driven: DIC dominated), numbered with Roman numerals when a family has several
members. This module makes the same call reproducibly:

1. **ICE** when most of the biome's boxes are ice covered: its median box sea-ice fraction is at
   least ``ice_threshold`` (percent; with no sea-ice field, its median box SST is below
   ``ice_sst`` degC);
2. otherwise **SUBTR** when the biome's mean standardized SST slope exceeds its mean standardized
   DIC slope (the temperature term dominates the fCO2 relation);
3. otherwise **SUBP+UP**.

Members of a family are numbered I, II, III, ... by decreasing number of boxes (ties: lower biome
number first). Names can be overridden per biome number from the recipe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FAMILIES",
    "BiomeSignature",
    "biome_signatures",
    "flag_meaning",
    "name_biomes",
    "roman",
]

#: Family name -> one-line description used in captions and metadata.
FAMILIES: dict[str, str] = {
    "ICE": "sea-ice covered",
    "SUBTR": "subtropical, thermally driven (SST slope dominates)",
    "SUBP+UP": "subpolar and upwelling, non-thermally driven (DIC slope dominates)",
}


def roman(number: int) -> str:
    """Return the Roman numeral of a positive integer (1 -> ``I``)."""
    if number < 1:
        raise ValueError(f"Roman numerals need a positive integer, got {number}")
    numerals = [
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ]
    text = ""
    for value, numeral in numerals:
        count, number = divmod(number, value)
        text += numeral * count
    return text


@dataclass(frozen=True)
class BiomeSignature:
    """What the naming rule looks at, per biome (arrays indexed like ``labels``)."""

    labels: np.ndarray
    n_boxes: np.ndarray
    mean_z: np.ndarray
    mean_abs_lat: np.ndarray
    median_sst: np.ndarray
    median_ice: np.ndarray


def biome_signatures(
    labels: np.ndarray,
    z: np.ndarray,
    lat: np.ndarray,
    sst: np.ndarray,
    ice: np.ndarray | None = None,
) -> BiomeSignature:
    """Summarize each biome: mean standardized RCs and |latitude|, median SST and sea ice.

    Parameters
    ----------
    labels
        Biome label per box (1..K).
    z
        Standardized RCs per box (n_box x 3: SST, DIC, ALK).
    lat
        Box-centre latitude.
    sst
        Box-mean SST (degC).
    ice
        Box-mean sea-ice fraction (%), or ``None``.

    Returns
    -------
    BiomeSignature
    """
    labels = np.asarray(labels)
    values = np.unique(labels)
    index = np.searchsorted(values, labels)
    count = np.bincount(index, minlength=values.size).astype(float)

    def mean(column: np.ndarray) -> np.ndarray:
        column = np.asarray(column, dtype=float)
        ok = np.isfinite(column)
        sums = np.bincount(index[ok], weights=column[ok], minlength=values.size)
        numbers = np.bincount(index[ok], minlength=values.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(numbers > 0, sums / np.maximum(numbers, 1), np.nan)

    def median(column: np.ndarray) -> np.ndarray:
        column = np.asarray(column, dtype=float)
        result = np.full(values.size, np.nan)
        for k in range(values.size):  # one value per biome: K is small
            members = column[(index == k) & np.isfinite(column)]
            if members.size:
                result[k] = np.median(members)
        return result

    mean_z = np.column_stack([mean(z[:, k]) for k in range(z.shape[1])])
    return BiomeSignature(
        labels=values,
        n_boxes=count.astype(int),
        mean_z=mean_z,
        mean_abs_lat=mean(np.abs(lat)),
        median_sst=median(sst),
        median_ice=median(ice) if ice is not None else np.full(values.size, np.nan),
    )


def name_biomes(
    signature: BiomeSignature,
    *,
    ice_threshold: float = 15.0,
    ice_sst: float = -1.0,
    overrides: Mapping[int, str] | None = None,
) -> dict[int, str]:
    """Name every biome after the rule in the module docstring.

    Parameters
    ----------
    signature
        From :func:`biome_signatures`.
    ice_threshold
        Median box sea-ice fraction (%) from which a biome is ICE.
    ice_sst
        Median box SST (degC) below which a biome is ICE when no sea-ice field is available.
    overrides
        Biome number -> name, from the recipe; replaces the automatic name.

    Returns
    -------
    dict
        Biome number -> unique name.

    Raises
    ------
    ValueError
        When an override names a biome that does not exist or two biomes end up with one name.
    """
    families = []
    for k in range(signature.labels.size):
        ice = signature.median_ice[k]
        if (np.isfinite(ice) and ice >= ice_threshold) or (
            not np.isfinite(ice) and signature.median_sst[k] < ice_sst
        ):
            families.append("ICE")
        elif signature.mean_z[k, 0] > signature.mean_z[k, 1]:
            families.append("SUBTR")
        else:
            families.append("SUBP+UP")
    names: dict[int, str] = {}
    for family in FAMILIES:
        members = [k for k, fam in enumerate(families) if fam == family]
        members.sort(key=lambda k: (-signature.n_boxes[k], signature.labels[k]))
        for rank, k in enumerate(members, start=1):
            label = int(signature.labels[k])
            names[label] = family if len(members) == 1 else f"{family} {roman(rank)}"
    for label, name in (overrides or {}).items():
        if int(label) not in names:
            raise ValueError(
                f"biome name override for biome {label}, but the biomes are {sorted(names)}"
            )
        names[int(label)] = str(name)
    if len(set(names.values())) != len(names):
        raise ValueError(f"biome names are not unique: {names}")
    return dict(sorted(names.items()))


def flag_meaning(name: str) -> str:
    """Return a name as a CF ``flag_meanings`` word (blanks and '+' replaced)."""
    return name.replace("+", "_and_").replace(" ", "_")
