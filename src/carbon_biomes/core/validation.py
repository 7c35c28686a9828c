"""One validation style for every settings object of the library.

Each check returns the normalized value or raises :class:`~carbon_biomes.core.errors.SettingsError`
with a message that names the setting, what it must be and what it got.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from carbon_biomes.core.errors import SettingsError

__all__ = [
    "as_tuple",
    "check_bool",
    "check_choice",
    "check_int",
    "check_month",
    "check_number",
    "check_known_keys",
]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def as_tuple(value: Any) -> tuple[Any, ...]:
    """A scalar (or string, or date) as a 1-tuple; any other iterable as a tuple."""
    if value is None:
        return ()
    if isinstance(value, str | int | float) or hasattr(value, "year"):
        return (value,)
    return tuple(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` must be true or false."""
    if not isinstance(value, bool):
        raise SettingsError(f"setting '{name}' must be true or false, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` must be one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise SettingsError(f"setting '{name}' must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` must be an integer (not a bool), at least ``minimum``."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not is_int and hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu":
        is_int, value = True, int(value)
    if not is_int or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise SettingsError(f"setting '{name}' must be an integer{bound}, got {value!r}")
    return int(value)


def check_number(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    closed_low: bool = True,
    closed_high: bool = True,
) -> float:
    """``value`` must be a finite number in the interval from ``low`` to ``high``."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok and hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iuf":
        ok, value = True, float(value)
    if ok:
        ok = math.isfinite(value)
        ok = ok and (value >= low if closed_low else value > low)
        ok = ok and (value <= high if closed_high else value < high)
    if not ok:
        interval = f"{'[' if closed_low else '('}{low:g}, {high:g}{']' if closed_high else ')'}"
        raise SettingsError(
            f"setting '{name}' must be a finite number in {interval}, got {value!r}"
        )
    return float(value)


def check_month(name: str, value: Any) -> str:
    """``YYYY-MM`` from a recipe value (a string or a YAML date)."""
    text = str(value)
    if hasattr(value, "year") and hasattr(value, "month"):
        text = f"{value.year:04d}-{value.month:02d}"
    match = _MONTH.match(text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise SettingsError(f"setting '{name}' must be a month like 2009-01, got {value!r}")
    return text


def check_known_keys(what: str, given: Iterable[str], known: Iterable[str]) -> None:
    """Refuse unknown keys, listing the known ones."""
    known = set(known)
    unknown = sorted(set(given) - known)
    if unknown:
        raise SettingsError(
            f"unknown setting(s) {', '.join(unknown)} for {what}; known settings: "
            f"{', '.join(sorted(known))}"
        )


def settings_from_mapping(cls: type, mapping: Mapping[str, Any], what: str) -> Any:
    """Build a settings dataclass from a mapping, refusing unknown keys."""
    known = {f.name for f in dataclasses.fields(cls)}
    check_known_keys(what, mapping, known)
    return cls(**dict(mapping))


def settings_to_dict(settings: Any) -> dict[str, Any]:
    """A settings dataclass as a JSON-serializable dictionary (tuples become lists)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = {str(k): v for k, v in value.items()}
        out[f.name] = value
    return out
