"""Ocean regions of the analysis of tracked biomes, their native cells and the cells' areas.

docs/method.md §4. A region is a latitude-longitude rectangle; it selects native cells by their
own centre coordinates (never by their box), so a region edge inside a box splits the box. Areas
come from ``areacello`` or, without it, from the grid's cell bounds on a sphere; never from cell
counts.

Edge rules (:meth:`Region.contains`), with longitudes wrapped to [-180, 180):

* latitude: ``lat_min <= lat < lat_max``; the northern edge is inclusive when ``lat_max`` is 90
  or the region says ``lat_max_inclusive`` (the Southern Ocean: ``lat <= -45``, as in the
  method);
* longitude: ``west <= lon < east``; a region whose wrapped ``lon_min`` exceeds its wrapped
  ``lon_max`` crosses the dateline and holds ``lon >= west`` or ``lon < east``; a span of exactly
  360 degrees (e.g. ``[-180, 180]`` or ``[0, 360]``) holds every longitude.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from carbon_biomes.core.errors import DiagnosticError, SettingsError
from carbon_biomes.core.monthly_regression import NativeGrid
from carbon_biomes.core.validation import check_bool, check_known_keys, check_number

__all__ = [
    "ARCTIC",
    "DEFAULT_REGIONS",
    "EARTH_RADIUS",
    "EQUATORIAL_PACIFIC",
    "GLOBAL",
    "NORTH_ATLANTIC",
    "PAPER_REGIONS",
    "SOUTHERN_OCEAN",
    "Region",
    "cell_areas",
    "region_masks",
    "regions_from_settings",
    "spherical_polygon_area",
]

#: Radius of the spherical Earth of the cell areas computed from bounds (m).
EARTH_RADIUS = 6_371_000.0

#: Keys of a region given as a mapping (:meth:`Region.from_mapping`).
_REGION_KEYS = ("name", "lat", "lon", "lat_max_inclusive")


def _wrap(lon: np.ndarray | float) -> np.ndarray:
    """Longitudes wrapped into [-180, 180) (NaN stays NaN)."""
    wrapped = np.mod(np.asarray(lon, dtype=np.float64) + 180.0, 360.0) - 180.0
    # np.mod of a tiny negative number can round to 360 exactly
    return np.where(wrapped >= 180.0, wrapped - 360.0, wrapped)


def _degrees(value: float, positive: str, negative: str) -> str:
    """``10°N``-style text of one coordinate."""
    return f"{abs(value):g}°{positive if value >= 0 else negative}"


@dataclass(frozen=True)
class Region:
    """A latitude-longitude rectangle of the ocean (docs/method.md §4).

    Attributes
    ----------
    name
        Name of the region (unique among the regions of an analysis).
    lat_min, lat_max
        Southern and northern edges in degrees north, ``-90 <= lat_min < lat_max <= 90``.
    lon_min, lon_max
        Western and eastern edges in degrees east, in any convention (values in [-360, 360]);
        the region runs eastwards from ``lon_min`` to ``lon_max``, across the dateline when the
        wrapped ``lon_min`` exceeds the wrapped ``lon_max`` (Equatorial Pacific: 105, -80). A
        span of exactly 360 degrees holds every longitude.
    lat_max_inclusive
        Also hold cells exactly on the northern edge (always so when ``lat_max`` is 90).
    """

    name: str
    lat_min: float = -90.0
    lat_max: float = 90.0
    lon_min: float = -180.0
    lon_max: float = 180.0
    lat_max_inclusive: bool = False

    def __post_init__(self) -> None:
        """Validate and normalize."""
        set_ = object.__setattr__
        if not isinstance(self.name, str) or not self.name.strip():
            raise SettingsError(f"a region needs a non-empty name, got {self.name!r}")
        set_(self, "name", self.name.strip())
        where = f"regions[{self.name}]"
        for key, limit in (("lat_min", 90.0), ("lat_max", 90.0), ("lon_min", 360.0),
                           ("lon_max", 360.0)):  # fmt: skip
            set_(self, key, check_number(f"{where}.{key}", getattr(self, key), -limit, limit))
        if self.lat_min >= self.lat_max:
            raise SettingsError(
                f"setting '{where}.lat_min' must be below '{where}.lat_max', got "
                f"{self.lat_min:g} >= {self.lat_max:g}"
            )
        check_bool(f"{where}.lat_max_inclusive", self.lat_max_inclusive)
        span = self.lon_max - self.lon_min
        if abs(span) > 360.0 or (abs(span) == 360.0 and span < 0):
            raise SettingsError(
                f"setting '{where}.lon_max' must lie less than 360 degrees east of "
                f"'{where}.lon_min' (or exactly 360 for all longitudes), got lon_min "
                f"{self.lon_min:g}, lon_max {self.lon_max:g}"
            )
        if span != 360.0 and self.west == self.east:
            raise SettingsError(
                f"settings '{where}.lon_min' and '{where}.lon_max' give an empty longitude range "
                f"({self.lon_min:g} to {self.lon_max:g}); use a span of 360 for all longitudes"
            )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Region:
        """Build a region from a recipe-style mapping.

        The format is::

            name: North Atlantic        # required
            lat: [10, 70]               # [south, north] in degrees north; default [-90, 90]
            lon: [-75, 0]               # [west, east], eastwards, any convention; default all
            lat_max_inclusive: false    # optional: also hold cells on the northern edge

        e.g. ``{"name": "Equatorial Pacific", "lat": [-10, 10], "lon": [105, -80]}`` crosses the
        dateline (equivalently ``lon: [105, 280]``).

        Parameters
        ----------
        mapping
            The region's settings.

        Returns
        -------
        Region

        Raises
        ------
        SettingsError
            On an unknown key, a missing name, a bound that is not a pair of numbers or a bound
            out of range; the message names the region and the bound.
        """
        if not isinstance(mapping, Mapping):
            raise SettingsError(f"a region must be a mapping with a name, got {mapping!r}")
        name = mapping.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SettingsError(f"a region needs a non-empty 'name', got {dict(mapping)!r}")
        check_known_keys(f"region '{name}'", mapping, _REGION_KEYS)
        bounds: dict[str, Any] = {}
        for key, default in (("lat", (-90.0, 90.0)), ("lon", (-180.0, 180.0))):
            value = mapping.get(key, default)
            if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
                value = None
            if value is None or len(value) != 2:
                raise SettingsError(
                    f"setting 'regions[{name}].{key}' must be a pair [{key}_min, {key}_max] of "
                    f"degrees, got {mapping.get(key)!r}"
                )
            bounds[f"{key}_min"], bounds[f"{key}_max"] = value
        return cls(
            name=name,
            lat_max_inclusive=mapping.get("lat_max_inclusive", False),
            **bounds,
        )

    def to_mapping(self) -> dict[str, Any]:
        """The region in the format of :meth:`from_mapping` (JSON-serializable)."""
        out: dict[str, Any] = {
            "name": self.name,
            "lat": [self.lat_min, self.lat_max],
            "lon": [self.lon_min, self.lon_max],
        }
        if self.lat_max_inclusive:
            out["lat_max_inclusive"] = True
        return out

    @property
    def all_longitudes(self) -> bool:
        """True when the region holds every longitude."""
        return self.lon_max - self.lon_min == 360.0

    @property
    def west(self) -> float:
        """Western edge wrapped into [-180, 180)."""
        return float(_wrap(self.lon_min))

    @property
    def east(self) -> float:
        """Eastern edge wrapped into [-180, 180)."""
        return float(_wrap(self.lon_max))

    @property
    def crosses_dateline(self) -> bool:
        """True when the region runs across 180 degrees (wrapped west > wrapped east)."""
        return not self.all_longitudes and self.west > self.east

    @property
    def description(self) -> str:
        """The bounds as text, e.g. ``10°S-10°N, 105°E-80°W`` (for captions)."""
        north = _degrees(self.lat_max, "N", "S")
        south = _degrees(self.lat_min, "N", "S")
        lat = f"{south}-{north}" + (" (inclusive)" if self.lat_max_inclusive else "")
        if self.all_longitudes:
            return f"{lat}, all longitudes"
        return f"{lat}, {_degrees(self.west, 'E', 'W')}-{_degrees(self.east, 'E', 'W')}"

    def contains(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Whether each point (a native cell's centre) lies in the region.

        ``lat_min <= lat < lat_max`` (``<=`` when ``lat_max`` is 90 or ``lat_max_inclusive``)
        and, with longitudes wrapped into [-180, 180), ``west <= lon < east`` (``lon >= west``
        or ``lon < east`` across the dateline). Non-finite or masked coordinates are outside.

        Parameters
        ----------
        lat, lon
            Latitudes and longitudes in degrees (any longitude convention), broadcastable.

        Returns
        -------
        ndarray of bool
            True where the point lies in the region, of the broadcast shape.
        """
        lat_a = np.ma.filled(np.ma.asarray(lat, dtype=np.float64), np.nan)
        lon_a = _wrap(np.ma.filled(np.ma.asarray(lon, dtype=np.float64), np.nan))
        with np.errstate(invalid="ignore"):
            north = lat_a <= self.lat_max if self._north_inclusive else lat_a < self.lat_max
            inside_lat = (lat_a >= self.lat_min) & north
            if self.all_longitudes:
                inside_lon = np.isfinite(lon_a)
            elif self.crosses_dateline:
                inside_lon = (lon_a >= self.west) | (lon_a < self.east)
            else:
                inside_lon = (lon_a >= self.west) & (lon_a < self.east)
        return np.asarray(inside_lat & inside_lon, dtype=bool)

    @property
    def _north_inclusive(self) -> bool:
        return self.lat_max_inclusive or self.lat_max == 90.0


#: North of 70°N (70 inclusive, the pole included).
ARCTIC = Region("Arctic", 70.0, 90.0)
#: 75°W-0°, 10-70°N.
NORTH_ATLANTIC = Region("North Atlantic", 10.0, 70.0, -75.0, 0.0)
#: 10°S-10°N, 105°E-80°W, across the dateline.
EQUATORIAL_PACIFIC = Region("Equatorial Pacific", -10.0, 10.0, 105.0, -80.0)
#: lat <= -45 (the method's rule, so the northern edge is inclusive).
SOUTHERN_OCEAN = Region("Southern Ocean", -90.0, -45.0, lat_max_inclusive=True)
#: The regions of Mohanty et al. (2025).
PAPER_REGIONS: tuple[Region, ...] = (ARCTIC, NORTH_ATLANTIC, EQUATORIAL_PACIFIC, SOUTHERN_OCEAN)
#: The global ocean.
GLOBAL = Region("Global")
#: The regions analysed unless a recipe says otherwise.
DEFAULT_REGIONS: tuple[Region, ...] = (*PAPER_REGIONS, GLOBAL)


def regions_from_settings(value: Any) -> tuple[Region, ...]:
    """Regions from a recipe setting.

    Parameters
    ----------
    value
        ``None`` (the :data:`DEFAULT_REGIONS`), or a list whose items are names of default
        regions (case-insensitive, e.g. ``"north atlantic"``), mappings in the format of
        :meth:`Region.from_mapping` or :class:`Region` objects.

    Returns
    -------
    tuple of Region
        In the given order.

    Raises
    ------
    SettingsError
        On an unknown region name, an invalid region or two regions of one name.
    """
    if value is None:
        return DEFAULT_REGIONS
    if isinstance(value, str | Mapping | Region):
        value = [value]
    known = {region.name.lower(): region for region in DEFAULT_REGIONS}
    regions: list[Region] = []
    for item in value:
        if isinstance(item, Region):
            regions.append(item)
        elif isinstance(item, str):
            if item.strip().lower() not in known:
                raise SettingsError(
                    f"unknown region {item!r} in setting 'regions'; known names: "
                    f"{', '.join(r.name for r in DEFAULT_REGIONS)}, or give a mapping with "
                    "name, lat and lon"
                )
            regions.append(known[item.strip().lower()])
        else:
            regions.append(Region.from_mapping(item))
    _check_unique(regions)
    return tuple(regions)


def _check_unique(regions: Iterable[Region]) -> None:
    names = [region.name for region in regions]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise SettingsError(f"setting 'regions' names {', '.join(repeated)} more than once")


def region_masks(
    regions: Iterable[Region], grid: NativeGrid, *, dataset: str = ""
) -> dict[str, np.ndarray]:
    """The ocean cells of each region on a native grid, by the cells' own centres.

    Parameters
    ----------
    regions
        The regions (unique names).
    grid
        The dataset's native grid.
    dataset
        Dataset name for the error messages.

    Returns
    -------
    dict of str to ndarray of bool
        Region name -> 2-D mask of the grid's shape, True on the region's ocean cells; in the
        order of ``regions``.

    Raises
    ------
    DiagnosticError
        When a region holds no ocean cell of the grid (the message names the region).
    SettingsError
        When two regions have one name.
    """
    regions = tuple(regions)
    _check_unique(regions)
    lat, lon = grid.cell_coordinates()
    ocean = np.asarray(grid.ocean, dtype=bool)
    if grid.unique is not None:
        ocean = ocean & grid.unique  # a repeated cell (halo, north fold) is counted once
    masks: dict[str, np.ndarray] = {}
    for region in regions:
        mask = region.contains(lat, lon) & ocean
        if not mask.any():
            prefix = f"{dataset}: " if dataset else ""
            raise DiagnosticError(
                f"{prefix}region '{region.name}' ({region.description}) holds no ocean cell of "
                "the grid; remove it from the setting 'regions' or widen it"
            )
        masks[region.name] = mask
    return masks


# ---------------------------------------------------------------------------------------------
# Cell areas
# ---------------------------------------------------------------------------------------------
def cell_areas(grid: NativeGrid, *, dataset: str = "") -> tuple[np.ndarray, str]:
    """Area of every native cell in m2, and where it comes from.

    In order of preference:

    1. ``grid.area`` (the dataset's ``areacello``): source ``"areacello"``;
    2. a regular grid (1-D axes) with (n, 2) bounds: the exact area of each latitude-longitude
       cell on a sphere of radius :data:`EARTH_RADIUS`,
       ``R**2 * |sin(lat_north) - sin(lat_south)| * dlon``: ``"spherical areas from cell
       bounds"``;
    3. a regular grid without bounds: the same with edges midway between the centres (the outer
       edges half a spacing beyond the outer centres, latitudes clipped to +-90):
       ``"spherical areas from midpoints between cell centres"``;
    4. a curvilinear grid with (ny, nx, 4) vertex bounds: the area of the spherical polygon
       whose edges are the great circles between consecutive vertices (signed fan of
       triangles, Van Oosterom and Strackee 1983; either orientation):
       ``"spherical areas from cell vertices"``.

    Parameters
    ----------
    grid
        The dataset's native grid.
    dataset
        Dataset name for the error messages.

    Returns
    -------
    areas : ndarray of float64
        2-D, the grid's shape (values on land cells are not used and may be NaN; 0 on ocean
        cells that repeat another cell's position, :attr:`NativeGrid.unique`).
    source : str
        How the areas were obtained (for captions and provenance).

    Raises
    ------
    DiagnosticError
        When an ocean cell gets no finite, non-negative area, the shapes disagree or a
        curvilinear grid has neither ``areacello`` nor vertex bounds.
    """
    prefix = f"{dataset}: " if dataset else ""
    shape = grid.shape
    if grid.area is not None:
        areas = np.ma.filled(np.ma.asarray(grid.area, dtype=np.float64), np.nan)
        source = "areacello"
        if areas.shape != shape:
            raise DiagnosticError(
                f"{prefix}areacello has shape {areas.shape}, the grid has shape {shape}"
            )
    elif not grid.is_curvilinear:
        lat_bounds, lon_bounds = grid.latitude_bounds, grid.longitude_bounds
        source = "spherical areas from cell bounds"
        if lat_bounds is None or lon_bounds is None:
            source = "spherical areas from midpoints between cell centres"
        lat_edges = _axis_bounds(grid.latitude, lat_bounds, "latitude", prefix)
        lon_edges = _axis_bounds(grid.longitude, lon_bounds, "longitude", prefix)
        band = np.abs(np.diff(np.sin(np.deg2rad(np.clip(lat_edges, -90.0, 90.0))), axis=1))
        width = _longitude_widths(lon_edges)
        areas = EARTH_RADIUS**2 * band[:, 0][:, None] * np.deg2rad(width)[None, :]
    else:
        lat_v, lon_v = grid.latitude_bounds, grid.longitude_bounds
        if lat_v is None or lon_v is None:
            raise DiagnosticError(
                f"{prefix}the curvilinear grid has neither areacello nor cell vertex bounds, so "
                "its cell areas are unknown; add areacello to the recipe's datasets"
            )
        lat_v = np.ma.filled(np.ma.asarray(lat_v, dtype=np.float64), np.nan)
        lon_v = np.ma.filled(np.ma.asarray(lon_v, dtype=np.float64), np.nan)
        if lat_v.shape != (*shape, 4) or lon_v.shape != (*shape, 4):
            raise DiagnosticError(
                f"{prefix}cell vertex bounds must have shape {(*shape, 4)}, got "
                f"{lat_v.shape} and {lon_v.shape}"
            )
        areas = EARTH_RADIUS**2 * spherical_polygon_area(lat_v, lon_v)
        source = "spherical areas from cell vertices"
    ocean = np.asarray(grid.ocean, dtype=bool)
    if grid.unique is not None:
        # a repeated cell (halo column, north-fold row) has no area of its own
        areas = np.where(grid.unique, areas, 0.0)
    with np.errstate(invalid="ignore"):
        bad = ocean & ~(np.isfinite(areas) & (areas >= 0.0))
    if bad.any():
        raise DiagnosticError(
            f"{prefix}{int(bad.sum())} ocean cell(s) have no finite, non-negative area ({source})"
        )
    return np.ascontiguousarray(areas), source


def spherical_polygon_area(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Area on the unit sphere of polygons with great-circle edges.

    Parameters
    ----------
    lat, lon
        Vertices in degrees, shape (..., n_vertices), in either orientation; repeated vertices
        (e.g. at a pole) are allowed.

    Returns
    -------
    ndarray of float64
        Area in steradians, shape (...): the absolute value of the signed sum of the triangles
        fanned from the first vertex (exact for any simple polygon smaller than a hemisphere).
    """
    phi = np.deg2rad(np.asarray(lat, dtype=np.float64))
    lam = np.deg2rad(np.asarray(lon, dtype=np.float64))
    xyz = np.stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)), axis=-1)
    a = xyz[..., :1, :]
    b = xyz[..., 1:-1, :]
    c = xyz[..., 2:, :]
    numerator = np.einsum("...i,...i->...", a, np.cross(b, c))
    denominator = (
        1.0
        + np.einsum("...i,...i->...", a, b)
        + np.einsum("...i,...i->...", b, c)
        + np.einsum("...i,...i->...", c, a)
    )
    return np.abs(2.0 * np.arctan2(numerator, denominator).sum(axis=-1))


def _axis_bounds(
    centres: np.ndarray, bounds: np.ndarray | None, name: str, prefix: str
) -> np.ndarray:
    """(n, 2) cell edges of a 1-D axis: its bounds, or midpoints between its centres."""
    centres = np.asarray(centres, dtype=np.float64)
    if bounds is not None:
        edges = np.ma.filled(np.ma.asarray(bounds, dtype=np.float64), np.nan)
        if edges.shape != (centres.size, 2):
            raise DiagnosticError(
                f"{prefix}{name} bounds must have shape {(centres.size, 2)}, got {edges.shape}"
            )
        return edges
    if centres.size < 2:
        raise DiagnosticError(
            f"{prefix}the {name} axis has {centres.size} point(s) and no bounds, so its cell "
            "areas are unknown; add areacello to the recipe's datasets"
        )
    if name == "longitude":
        centres = np.unwrap(centres, period=360.0)
    mid = 0.5 * (centres[:-1] + centres[1:])
    first = centres[0] - 0.5 * (centres[1] - centres[0])
    last = centres[-1] + 0.5 * (centres[-1] - centres[-2])
    edges = np.concatenate(([first], mid, [last]))
    return np.stack((edges[:-1], edges[1:]), axis=-1)


def _longitude_widths(edges: np.ndarray) -> np.ndarray:
    """Width in degrees of each (west, east) longitude pair, whatever the convention."""
    raw = np.abs(edges[:, 1] - edges[:, 0])
    width = np.mod(raw, 360.0)
    width = np.where(width > 180.0, 360.0 - width, width)
    # a single cell spanning the whole circle
    return np.where((width == 0.0) & (raw > 0.0), 360.0, width)
