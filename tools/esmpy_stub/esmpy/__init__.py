"""Import-only stand-in for ESMF's ``esmpy``.

Real ``esmpy`` ships only with conda/ESMF installations, not on PyPI. ESMValCore 2.15 imports
``esmf_regrid``, which imports ``esmpy`` and reads a few enum constants at import time, so without
a module named ``esmpy`` even ``esmvaltool run`` of a recipe that never regrids fails. This package
provides those names. Every attempt to *use* ESMF (create a grid, a field, a regridder) raises
:class:`RuntimeError` with an explanation. The carbon-biome recipes never regrid: the method bins
native grid cells by their own latitude and longitude.

The carbon-biomes Makefile installs this package only when ``import esmpy`` fails.
"""

from __future__ import annotations

import enum

__version__ = "0.0.0+standin"
IS_STANDIN = True

_MESSAGE = (
    "This is carbon-biomes' import-only stand-in for esmpy (ESMF), installed because real esmpy "
    "is not available from PyPI. ESMF regridding is not possible in this environment: install "
    "esmpy from conda-forge to use ESMF-based regridding, or use a recipe that does not regrid."
)


class StandInError(RuntimeError):
    """Raised on any real use of the esmpy stand-in."""


class RegridMethod(enum.IntEnum):
    """Regridding methods (values as in ESMF)."""

    BILINEAR = 0
    PATCH = 1
    CONSERVE = 2
    NEAREST_STOD = 3
    NEAREST_DTOS = 4
    CONSERVE_2ND = 5


class NormType(enum.IntEnum):
    """Normalisation of conservative regridding."""

    DSTAREA = 0
    FRACAREA = 1


class ExtrapMethod(enum.IntEnum):
    """Extrapolation methods."""

    NONE = 0
    NEAREST_STOD = 1
    NEAREST_IDAVG = 2
    CREEP_FILL = 3


class PoleMethod(enum.IntEnum):
    """Pole treatment."""

    NONE = 0
    ALLAVG = 1
    NPNTAVG = 2
    TEETH = 3


class LineType(enum.IntEnum):
    """Line types."""

    CART = 0
    GREAT_CIRCLE = 1


class UnmappedAction(enum.IntEnum):
    """Action for unmapped destination points."""

    ERROR = 0
    IGNORE = 1


class StaggerLoc(enum.IntEnum):
    """Stagger locations."""

    CENTER = 0
    EDGE1 = 1
    EDGE2 = 2
    CORNER = 3


class MeshLoc(enum.IntEnum):
    """Mesh locations."""

    NODE = 0
    ELEMENT = 1


class CoordSys(enum.IntEnum):
    """Coordinate systems."""

    CART = 0
    SPH_DEG = 1
    SPH_RAD = 2


class GridItem(enum.IntEnum):
    """Grid items."""

    MASK = 0
    AREA = 1


class TypeKind(enum.IntEnum):
    """Data kinds."""

    I4 = 0
    I8 = 1
    R4 = 2
    R8 = 3


class LogKind(enum.IntEnum):
    """Log kinds."""

    MULTI = 0
    NONE = 1


class _Unavailable:
    """Any ESMF class: raises on construction."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise StandInError(_MESSAGE)


class Grid(_Unavailable):
    """Unavailable."""


class Mesh(_Unavailable):
    """Unavailable."""


class LocStream(_Unavailable):
    """Unavailable."""


class Field(_Unavailable):
    """Unavailable."""


class Regrid(_Unavailable):
    """Unavailable."""


class RegridFromFile(_Unavailable):
    """Unavailable."""


class Manager(_Unavailable):
    """Unavailable."""


class _Constants:
    NormType = NormType
    RegridMethod = RegridMethod
    ExtrapMethod = ExtrapMethod
    PoleMethod = PoleMethod
    LineType = LineType
    UnmappedAction = UnmappedAction
    StaggerLoc = StaggerLoc
    MeshLoc = MeshLoc
    CoordSys = CoordSys
    GridItem = GridItem
    TypeKind = TypeKind
    LogKind = LogKind


class _Api:
    constants = _Constants


api = _Api
