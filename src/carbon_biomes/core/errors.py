"""Errors raised by the carbon-biome library (science core and ESMValTool layer alike)."""

from __future__ import annotations

__all__ = ["CarbonBiomesError", "DiagnosticError", "SettingsError"]


class CarbonBiomesError(Exception):
    """Base class of every error the library raises on purpose."""


class DiagnosticError(CarbonBiomesError, RuntimeError):
    """The input cannot be analysed; the message names the dataset, variable and what is wrong."""


class SettingsError(CarbonBiomesError, ValueError):
    """A setting is unknown, missing or has a wrong value; the message names the setting."""
