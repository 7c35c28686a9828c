"""Box-wise multiple linear regression of fCO2 on its drivers (detection step 1-3).

The ocean surface is binned into the boxes of a regular latitude/longitude lattice of
``box_size`` degrees anchored at -90/-180 (docs/method.md §2.2). In every box, fCO2 is regressed by
ordinary least squares with intercept on the drivers (by convention SST, DIC and ALK, in that
order)::

    fco2 = c0 + c_T * sst + c_D * dic + c_A * alk

and the slopes are the box's regression coefficients (RCs).

:func:`box_regression` fits all boxes at once, with grouped sums (``np.bincount`` on a box index
per cell) and batched small linear solves: no Python loop over boxes or cells. It is numerically
careful: per-box means are computed first and the cross-products are accumulated on the centred
values (two passes), the normal equations are solved on the per-box correlation matrix of the
drivers, and the residual sum of squares is accumulated from the residuals themselves (third
pass), so that nearly perfect fits (R² close to 1) keep accurate standard errors.
:func:`box_regression_loop` is a slow, plain per-box reference (select the cells of a box with a
boolean mask, fit), like the original notebooks; it is meant for tests and benchmarks only.

The two filtering steps of the paper are separate functions, applied by the caller:

* :func:`outlier_mask` - the per-cell outlier filter (docs/method.md §2.1), applied to the fields
  *before* the regression (set the rejected cells to NaN, or mask them);
* :func:`significant_boxes` - the per-box significance filter (docs/method.md §2.3), applied to the
  result *after* the regression, with :meth:`BoxRegression.select`.

Units used throughout the package: fCO2 in µatm, SST in degC, DIC and ALK in mmol m-3
(≈ µmol kg-1 × 1.025); slopes therefore are in µatm degC-1 and µatm (mmol m-3)-1.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_BOX_SIZE",
    "DEFAULT_DRIVER_NAMES",
    "DEFAULT_MIN_POINTS",
    "DEFAULT_OUTLIER_FILTER",
    "BoxRegression",
    "box_centres",
    "box_index",
    "box_lattice",
    "box_regression",
    "box_regression_loop",
    "outlier_mask",
    "significant_boxes",
]

logger = logging.getLogger(__name__)

#: The paper's box size in degrees (docs/method.md §2.2).
DEFAULT_BOX_SIZE: float = 2.0
#: Fewest valid cells in a box for a fit (the paper: more than 4; docs/method.md §2.3).
DEFAULT_MIN_POINTS: int = 5
#: The paper's significance level of every slope (docs/method.md §2.3).
DEFAULT_ALPHA: float = 0.04
#: The paper's per-cell outlier filter (docs/method.md §2.1): mmol m-3, degC, uatm.
DEFAULT_OUTLIER_FILTER: dict[str, float] = {
    "dic_min": 1500.0,
    "alk_min": 1700.0,
    "sst_max": 40.0,
    "fco2_max": 500.0,
}

DEFAULT_DRIVER_NAMES: tuple[str, ...] = ("sst", "dic", "alk")
"""Names given to the drivers when there are exactly three and no names are passed."""

_RCOND = 1e-10
"""Default relative tolerance on the eigenvalues of a box's driver correlation matrix."""

_CONSTANT_RTOL = 1e-9
"""A variable is constant in a box when its standard deviation is at most this times its rms."""


# ---------------------------------------------------------------------------------------------
# Result container
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BoxRegression:
    """Per-box least-squares fits of a target on its drivers.

    One row per kept box, sorted by ascending ``box_id``. ``n_drivers`` is the number of drivers
    (3 for SST, DIC, ALK).

    Attributes
    ----------
    box_id : ndarray of int64, shape (n_box,)
        Lattice box id ``i * n_lon_boxes + j`` (latitude-major: south to north, then west to
        east), sorted ascending.
    lat, lon : ndarray of float64, shape (n_box,)
        Box centres in degrees north / east (longitude in [-180, 180)).
    n : ndarray of int64, shape (n_box,)
        Number of valid cells used in the fit.
    slopes : ndarray of float64, shape (n_box, n_drivers)
        The regression coefficients (RCs), one column per driver.
    intercept : ndarray of float64, shape (n_box,)
        The fitted intercept ``c0``.
    stderr : ndarray of float64, shape (n_box, n_drivers)
        Standard errors of the slopes.
    tvalues : ndarray of float64, shape (n_box, n_drivers)
        t statistics of the slopes (``slopes / stderr``).
    pvalues : ndarray of float64, shape (n_box, n_drivers)
        Two-sided t-test p-values of the slopes, ``df = n - n_drivers - 1``.
    r2 : ndarray of float64, shape (n_box,)
        Coefficient of determination.
    vif : ndarray of float64, shape (n_box, n_drivers)
        Variance inflation factors of the drivers (diagonal of the inverse of the box's driver
        correlation matrix); 1 when a driver is uncorrelated with the others.
    f_statistic, f_pvalue : ndarray of float64, shape (n_box,)
        Joint F test of all slopes being zero, ``df = (n_drivers, n - n_drivers - 1)``.
    box_size : float
        Lattice spacing in degrees.
    driver_names : tuple of str
        Names of the drivers (columns of ``slopes``).
    n_dropped_few_points : int
        Boxes that had valid cells but fewer than ``min_points`` or ``n <= n_drivers + 1``.
    n_dropped_singular : int
        Boxes with a rank-deficient design (a constant driver, or drivers exactly collinear
        within the relative tolerance ``rcond``).
    n_dropped_constant_target : int
        Boxes where the target is constant (no variance to explain: p-values undefined).
    """

    box_id: NDArray[np.int64]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    n: NDArray[np.int64]
    slopes: NDArray[np.float64]
    intercept: NDArray[np.float64]
    stderr: NDArray[np.float64]
    tvalues: NDArray[np.float64]
    pvalues: NDArray[np.float64]
    r2: NDArray[np.float64]
    vif: NDArray[np.float64]
    f_statistic: NDArray[np.float64]
    f_pvalue: NDArray[np.float64]
    box_size: float
    driver_names: tuple[str, ...] = field(default=DEFAULT_DRIVER_NAMES)
    n_dropped_few_points: int = 0
    n_dropped_singular: int = 0
    n_dropped_constant_target: int = 0

    #: names of the per-box array fields (subset together by :meth:`select`)
    _ARRAY_FIELDS = (
        "box_id",
        "lat",
        "lon",
        "n",
        "slopes",
        "intercept",
        "stderr",
        "tvalues",
        "pvalues",
        "r2",
        "vif",
        "f_statistic",
        "f_pvalue",
    )

    def __len__(self) -> int:
        """Return the number of boxes."""
        return int(self.box_id.size)

    @property
    def n_boxes(self) -> int:
        """Number of boxes in the result."""
        return len(self)

    @property
    def n_drivers(self) -> int:
        """Number of drivers (columns of :attr:`slopes`)."""
        return int(self.slopes.shape[1])

    def select(self, mask: ArrayLike) -> BoxRegression:
        """Return the boxes selected by a boolean mask (or an index array), in the same order.

        Parameters
        ----------
        mask : array_like of bool, shape (n_box,), or array_like of int
            Boxes to keep, e.g. ``significant_boxes(result)``. An integer index array must be
            increasing so that the result stays sorted by ``box_id``.

        Returns
        -------
        BoxRegression
            A new result; the ``n_dropped_*`` counters are copied unchanged (they describe the
            regression step, not this selection).

        Raises
        ------
        ValueError
            If a boolean mask does not have one entry per box, or an index array is not
            strictly increasing.
        """
        sel = np.asarray(mask)
        if sel.dtype == bool:
            if sel.shape != self.box_id.shape:
                raise ValueError(
                    f"mask has shape {sel.shape}, expected ({self.n_boxes},) (one entry per box)"
                )
        else:
            sel = sel.astype(np.int64, copy=False).ravel()
            if sel.size > 1 and np.any(np.diff(sel) <= 0):
                raise ValueError("an index array passed to select() must be strictly increasing")
        return replace(self, **{name: getattr(self, name)[sel] for name in self._ARRAY_FIELDS})

    def to_dict(self) -> dict[str, object]:
        """Return the fields as a plain dictionary (arrays are not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ---------------------------------------------------------------------------------------------
# Lattice helpers
# ---------------------------------------------------------------------------------------------
def _check_box_size(box_size: float) -> tuple[float, int, int]:
    """Validate ``box_size`` and return it with the lattice shape."""
    try:
        b = float(box_size)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"box_size must be a number of degrees, got {box_size!r}") from exc
    if not np.isfinite(b) or b <= 0:
        raise ValueError(f"box_size must be a positive finite number of degrees, got {box_size!r}")
    n_lat_f, n_lon_f = 180.0 / b, 360.0 / b
    n_lat, n_lon = round(n_lat_f), round(n_lon_f)
    if n_lat < 1 or abs(n_lat_f - n_lat) > 1e-9 * n_lat_f or abs(n_lon_f - n_lon) > 1e-9 * n_lon_f:
        raise ValueError(
            f"box_size={box_size!r} must divide both 180 and 360 degrees evenly "
            "(e.g. 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 9, 10, 12, 15, 18, 20, 30, 36, 45, 60, 90, 180)"
        )
    return b, n_lat, n_lon


def box_lattice(box_size: float) -> tuple[int, int]:
    """Return the shape of the box lattice.

    Parameters
    ----------
    box_size : float
        Lattice spacing in degrees; must divide 180 and 360 evenly.

    Returns
    -------
    n_lat, n_lon : int
        Number of latitude rows (``180 / box_size``) and longitude columns (``360 / box_size``).

    Raises
    ------
    ValueError
        If ``box_size`` is not positive and finite or does not divide 180 and 360 evenly.
    """
    _, n_lat, n_lon = _check_box_size(box_size)
    return n_lat, n_lon


def _wrap_lon(lon: NDArray[np.float64]) -> NDArray[np.float64]:
    """Wrap longitudes into [-180, 180)."""
    wrapped = np.mod(lon + 180.0, 360.0) - 180.0
    # np.mod of a tiny negative number can round to 360 exactly
    wrapped[wrapped >= 180.0] -= 360.0
    return wrapped


def _lattice_row(x: NDArray[np.float64], origin: float, b: float, n: int) -> NDArray[np.int64]:
    """Row index i with ``origin + i*b <= x < origin + (i+1)*b`` (evaluated in float64)."""
    i = np.floor((x - origin) / b).astype(np.int64)
    # fix the rare off-by-one of the division so that the rule holds for the float boundaries
    i += (origin + (i + 1) * b <= x).astype(np.int64)
    i -= (origin + i * b > x).astype(np.int64)
    return np.clip(i, 0, n - 1)


def box_index(lat: ArrayLike, lon: ArrayLike, box_size: float = 2.0) -> NDArray[np.int64]:
    """Return the lattice box id of every cell.

    A cell belongs to box (i, j) when ``-90 + i*b <= lat < -90 + (i+1)*b`` (``lat = 90`` goes to
    the last row) and ``-180 + j*b <= lon < -180 + (j+1)*b`` after wrapping the longitude into
    [-180, 180). The id is ``i * n_lon_boxes + j``.

    Parameters
    ----------
    lat, lon : array_like
        Cell latitudes and longitudes in degrees, of the same shape (any longitude convention).
    box_size : float, default 2.0
        Lattice spacing in degrees; must divide 180 and 360 evenly.

    Returns
    -------
    ndarray of int64
        Box id per cell, same shape as ``lat``; -1 where lat or lon is not finite.

    Raises
    ------
    ValueError
        If the shapes differ, a latitude lies outside [-90, 90] or ``box_size`` is invalid.
    """
    b, n_lat, n_lon = _check_box_size(box_size)
    lat_a = np.asarray(np.ma.filled(np.ma.asarray(lat, dtype=np.float64), np.nan))
    lon_a = np.asarray(np.ma.filled(np.ma.asarray(lon, dtype=np.float64), np.nan))
    if lat_a.shape != lon_a.shape:
        raise ValueError(f"lat shape {lat_a.shape} differs from lon shape {lon_a.shape}")
    finite = np.isfinite(lat_a) & np.isfinite(lon_a)
    _check_latitudes(lat_a[finite])
    ids = np.full(lat_a.shape, -1, dtype=np.int64)
    ids[finite] = _box_ids(lat_a[finite], lon_a[finite], b, n_lat, n_lon)
    return ids


def _check_latitudes(lat: NDArray[np.float64]) -> None:
    if lat.size and (lat.min() < -90.0 or lat.max() > 90.0):
        raise ValueError(
            f"latitudes must lie in [-90, 90] degrees, got values in [{lat.min()}, {lat.max()}] "
            "(were latitude and longitude swapped?)"
        )


def _box_ids(
    lat: NDArray[np.float64], lon: NDArray[np.float64], b: float, n_lat: int, n_lon: int
) -> NDArray[np.int64]:
    """Box ids of finite, in-range coordinates (no validation)."""
    i = _lattice_row(lat, -90.0, b, n_lat)
    j = _lattice_row(_wrap_lon(lon), -180.0, b, n_lon)
    return i * n_lon + j


def box_centres(
    box_id: ArrayLike, box_size: float = 2.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the centre latitude and longitude of lattice boxes.

    Parameters
    ----------
    box_id : array_like of int
        Box ids as returned by :func:`box_index`.
    box_size : float, default 2.0
        Lattice spacing in degrees.

    Returns
    -------
    lat, lon : ndarray of float64
        Centres in degrees north and east (longitude in [-180, 180)).

    Raises
    ------
    ValueError
        If an id lies outside the lattice or ``box_size`` is invalid.
    """
    b, n_lat, n_lon = _check_box_size(box_size)
    ids = np.asarray(box_id, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= n_lat * n_lon):
        raise ValueError(f"box ids must lie in [0, {n_lat * n_lon}) for box_size={b}")
    i, j = np.divmod(ids, n_lon)
    return -90.0 + (i + 0.5) * b, -180.0 + (j + 0.5) * b


# ---------------------------------------------------------------------------------------------
# Input preparation shared by the vectorized and the loop implementation
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Cells:
    """Valid cells, flattened: box id, target and drivers (one row per driver)."""

    ids: NDArray[np.int64]
    y: NDArray[np.float64]
    x: NDArray[np.float64]  # shape (n_drivers, n_cells), C-contiguous rows
    box_size: float
    n_lat: int
    n_lon: int


def _as_float_and_mask(a: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Return data as float64 and an invalid-cell mask (masked or not finite)."""
    m = np.ma.asarray(a)
    data = np.asarray(np.ma.getdata(m), dtype=np.float64)
    invalid = np.ma.getmaskarray(m) | ~np.isfinite(data)
    return data, invalid


def _prepare_cells(
    lat: ArrayLike | None,
    lon: ArrayLike | None,
    target: ArrayLike,
    drivers: Sequence[ArrayLike],
    box_size: float,
    cell_box: ArrayLike | None = None,
) -> _Cells:
    b, n_lat, n_lon = _check_box_size(box_size)
    if isinstance(drivers, np.ndarray) and drivers.ndim == 0:
        raise ValueError("drivers must be a sequence of arrays (e.g. [sst, dic, alk])")
    driver_list = list(drivers)
    if not driver_list:
        raise ValueError("at least one driver is required (e.g. drivers=[sst, dic, alk])")

    y, invalid = _as_float_and_mask(target)
    shape = y.shape
    xs = []
    for k, d in enumerate(driver_list):
        xk, inv_k = _as_float_and_mask(d)
        if xk.shape != shape:
            raise ValueError(
                f"driver {k} has shape {xk.shape}, but the target has shape {shape}; "
                "all drivers must have the shape of the target"
            )
        invalid |= inv_k
        xs.append(xk)

    if cell_box is not None:
        boxes = np.asarray(cell_box, dtype=np.int64)
        if boxes.shape != shape:
            raise ValueError(
                f"cell_box has shape {boxes.shape}, but the target has shape {shape}; it must "
                "give the box id of every cell of the target"
            )
        if boxes.size and boxes.max() >= n_lat * n_lon:
            raise ValueError(f"cell_box holds ids beyond the lattice of box_size={b}")
        valid = ~invalid & (boxes >= 0)
        x = np.empty((len(xs), int(valid.sum())), dtype=np.float64)
        for k, xk in enumerate(xs):
            x[k] = xk[valid]
        return _Cells(ids=boxes[valid], y=y[valid], x=x, box_size=b, n_lat=n_lat, n_lon=n_lon)

    if lat is None or lon is None:
        raise ValueError("lat and lon are required unless cell_box is given")
    lat_a, lat_inv = _as_float_and_mask(lat)
    lon_a, lon_inv = _as_float_and_mask(lon)
    if lat_a.shape == shape and lon_a.shape == shape:
        pass
    elif (
        len(shape) == 2
        and lat_a.ndim == 1
        and lon_a.ndim == 1
        and lat_a.shape[0] == shape[0]
        and lon_a.shape[0] == shape[1]
    ):
        lat_a, lon_a = np.broadcast_arrays(lat_a[:, None], lon_a[None, :])
        lat_inv, lon_inv = np.broadcast_arrays(lat_inv[:, None], lon_inv[None, :])
    else:
        raise ValueError(
            f"lat {lat_a.shape} and lon {lon_a.shape} must either both have the target's shape "
            f"{shape} (curvilinear grid), or be 1-D of lengths {shape[0] if shape else '?'} and "
            f"{shape[1] if len(shape) > 1 else '?'} for a 2-D (lat, lon) target"
        )
    finite_coords = ~(lat_inv | lon_inv)
    _check_latitudes(lat_a[finite_coords])
    valid = ~invalid & finite_coords

    ids = _box_ids(lat_a[valid], lon_a[valid], b, n_lat, n_lon)
    x = np.empty((len(xs), ids.size), dtype=np.float64)
    for k, xk in enumerate(xs):
        x[k] = xk[valid]
    return _Cells(ids=ids, y=y[valid], x=x, box_size=b, n_lat=n_lat, n_lon=n_lon)


def _driver_names(names: Sequence[str] | None, n_drivers: int) -> tuple[str, ...]:
    if names is None:
        if n_drivers == len(DEFAULT_DRIVER_NAMES):
            return DEFAULT_DRIVER_NAMES
        return tuple(f"driver_{k}" for k in range(n_drivers))
    out = tuple(str(s) for s in names)
    if len(out) != n_drivers:
        raise ValueError(f"got {len(out)} driver names for {n_drivers} drivers")
    return out


def _check_min_points(min_points: int) -> int:
    if int(min_points) != min_points or min_points < 1:
        raise ValueError(f"min_points must be a positive integer, got {min_points!r}")
    return int(min_points)


# ---------------------------------------------------------------------------------------------
# Batched statistics from per-box centred cross-products
# ---------------------------------------------------------------------------------------------
def _degenerate_flags(
    n: NDArray[np.float64],
    x_mean: NDArray[np.float64],
    sxx: NDArray[np.float64],
    y_mean: NDArray[np.float64],
    syy: NDArray[np.float64],
    rcond: float,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.float64]]:
    """Flag rank-deficient designs and constant targets; return the driver correlation matrix.

    Parameters are per box: ``n`` (g,), ``x_mean`` (g, p), centred cross-products ``sxx``
    (g, p, p), ``y_mean`` (g,), ``syy`` (g,).

    A driver is constant when its standard deviation is at most ``_CONSTANT_RTOL`` times its
    root mean square (this absorbs the rounding of the mean of a constant). The design is
    singular when a driver is constant or when the smallest eigenvalue of the driver correlation
    matrix is at most ``rcond`` times the largest.
    """
    var_x = np.diagonal(sxx, axis1=1, axis2=2) / n[:, None]
    const_x = var_x <= (_CONSTANT_RTOL**2) * (var_x + x_mean**2)
    singular = const_x.any(axis=1)
    scale = np.sqrt(np.diagonal(sxx, axis1=1, axis2=2))
    scale = np.where(const_x, 1.0, scale)
    corr = sxx / (scale[:, :, None] * scale[:, None, :])
    if corr.shape[1] > 1:
        ok = ~singular
        eig = np.linalg.eigvalsh(corr[ok]) if ok.any() else np.empty((0, corr.shape[1]))
        rank_def = np.zeros(singular.shape, dtype=bool)
        rank_def[ok] = eig[:, 0] <= rcond * eig[:, -1]
        singular |= rank_def
    var_y = syy / n
    const_y = var_y <= (_CONSTANT_RTOL**2) * (var_y + y_mean**2)
    return singular, const_y & ~singular, corr


def _solve_boxes(
    corr: NDArray[np.float64], sxx: NDArray[np.float64], sxy: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Solve the normal equations in standardized form; return slopes, R⁻¹ diag and scales."""
    scale = np.sqrt(np.diagonal(sxx, axis1=1, axis2=2))  # (g, p)
    rhs = sxy / scale
    beta_std = np.linalg.solve(corr, rhs[:, :, None])[:, :, 0]
    corr_inv_diag = np.diagonal(np.linalg.inv(corr), axis1=1, axis2=2).copy()
    return beta_std / scale, corr_inv_diag, scale


def _inference(
    n: NDArray[np.float64],
    slopes: NDArray[np.float64],
    corr_inv_diag: NDArray[np.float64],
    scale: NDArray[np.float64],
    ssr: NDArray[np.float64],
    syy: NDArray[np.float64],
) -> dict[str, NDArray[np.float64]]:
    """Compute standard errors, t and F tests and R² from the per-box sums."""
    p = slopes.shape[1]
    df = n - p - 1
    sigma2 = ssr / df
    stderr = np.sqrt(sigma2[:, None] * corr_inv_diag) / scale
    with np.errstate(divide="ignore", invalid="ignore"):
        tvalues = slopes / stderr
        ess = np.maximum(syy - ssr, 0.0)
        f_stat = (ess / p) / sigma2
    pvalues = 2.0 * stats.t.sf(np.abs(tvalues), df[:, None])
    f_pvalue = stats.f.sf(f_stat, p, df)
    r2 = 1.0 - ssr / syy
    return {
        "stderr": stderr,
        "tvalues": tvalues,
        "pvalues": pvalues,
        "r2": r2,
        "vif": corr_inv_diag,
        "f_statistic": f_stat,
        "f_pvalue": f_pvalue,
    }


# ---------------------------------------------------------------------------------------------
# Public regression functions
# ---------------------------------------------------------------------------------------------
def box_regression(
    lat: ArrayLike | None,
    lon: ArrayLike | None,
    target: ArrayLike,
    drivers: Sequence[ArrayLike],
    box_size: float = DEFAULT_BOX_SIZE,
    min_points: int = DEFAULT_MIN_POINTS,
    *,
    driver_names: Sequence[str] | None = None,
    rcond: float = _RCOND,
    cell_box: ArrayLike | None = None,
) -> BoxRegression:
    """Fit ``target = c0 + sum_k c_k * driver_k`` by least squares in every lattice box at once.

    Vectorized over boxes: grouped sums with :func:`numpy.bincount` on a box index per cell,
    two-pass centring (box means first, then centred cross-products), batched solves of the
    standardized normal equations and a residual pass for the residual sum of squares. The cost
    is a few passes over the valid cells, independent of the number of boxes.

    Parameters
    ----------
    lat, lon : array_like
        Cell latitudes and longitudes in degrees: either of the target's shape (curvilinear or
        unstructured grid), or, for a 2-D ``(lat, lon)`` target, 1-D of lengths
        ``target.shape[0]`` and ``target.shape[1]`` (regular grid, broadcast). Longitudes may use
        any convention (0..360 or -180..180); they are wrapped into [-180, 180). Cells with
        non-finite coordinates are ignored.
    target : array_like
        The regressand, e.g. fCO2 in µatm. NaN, infinite or masked (numpy masked array) cells
        are ignored.
    drivers : sequence of array_like
        One or more regressors of the target's shape; by convention ``[sst, dic, alk]`` in
        degC and mmol m-3. A cell is used only if the target and all drivers are valid there.
    box_size : float, default 2.0
        Lattice spacing in degrees (paper: 2). Must divide 180 and 360 evenly.
    min_points : int, default 5
        Minimum number of valid cells in a box (paper: more than 4). A box also needs at least
        ``n_drivers + 2`` cells (one residual degree of freedom).
    driver_names : sequence of str, optional
        Names of the drivers; default ``("sst", "dic", "alk")`` for three drivers, else
        ``driver_0, driver_1, ...``.
    rcond : float, default 1e-10
        A box's design is rank deficient (and the box dropped) when the smallest eigenvalue of
        its driver correlation matrix is at most ``rcond`` times the largest, or when a driver
        is constant in the box.
    cell_box : array_like of int, optional
        Box id of every cell (the target's shape, -1 for cells outside the lattice), as given by
        :func:`box_index`. Pass it when fitting many months of one grid, so that the box of
        every cell is computed once (``lat`` and ``lon`` are then not used and may be None).

    Returns
    -------
    BoxRegression
        One row per kept box, sorted by box id. Boxes with too few cells, a singular design or
        a constant target are omitted and counted in ``n_dropped_few_points``,
        ``n_dropped_singular`` and ``n_dropped_constant_target``.

    Raises
    ------
    ValueError
        If there are no drivers, the shapes of target, drivers and coordinates do not match,
        a latitude lies outside [-90, 90], ``box_size`` is not positive and finite or does not
        divide 180 and 360 evenly, or ``min_points`` is not a positive integer.

    Notes
    -----
    Significance and outlier filtering are separate steps: see :func:`outlier_mask` (apply
    before) and :func:`significant_boxes` with :meth:`BoxRegression.select` (apply after).
    """
    min_points = _check_min_points(min_points)
    cells = _prepare_cells(lat, lon, target, drivers, box_size, cell_box)
    p = cells.x.shape[0]
    names = _driver_names(driver_names, p)
    n_total = cells.n_lat * cells.n_lon

    # boxes with enough valid cells; compact index g in 0..G-1 over kept boxes (sorted by id)
    counts = np.bincount(cells.ids, minlength=n_total)
    occupied = counts > 0
    enough = counts >= max(min_points, p + 2)
    n_few = int(np.count_nonzero(occupied & ~enough))
    kept_ids = np.flatnonzero(enough).astype(np.int64)
    lookup = np.full(n_total, -1, dtype=np.int64)
    lookup[kept_ids] = np.arange(kept_ids.size)
    g_all = lookup[cells.ids]
    use = g_all >= 0
    g = g_all[use]
    y = cells.y[use]
    x = cells.x[:, use]
    n_box = kept_ids.size
    n = counts[kept_ids].astype(np.float64)

    # pass 1: means
    y_mean = np.bincount(g, weights=y, minlength=n_box) / n
    x_mean = np.empty((n_box, p))
    for k in range(p):
        x_mean[:, k] = np.bincount(g, weights=x[k], minlength=n_box) / n
    # pass 2: centred cross-products
    yc = y - y_mean[g]
    xc = x - x_mean.T[:, g]
    syy = np.bincount(g, weights=yc * yc, minlength=n_box)
    sxy = np.empty((n_box, p))
    sxx = np.empty((n_box, p, p))
    for a in range(p):
        sxy[:, a] = np.bincount(g, weights=xc[a] * yc, minlength=n_box)
        for c in range(a, p):
            sxx[:, a, c] = np.bincount(g, weights=xc[a] * xc[c], minlength=n_box)
            sxx[:, c, a] = sxx[:, a, c]

    singular, const_y, corr = _degenerate_flags(n, x_mean, sxx, y_mean, syy, rcond)
    good = ~(singular | const_y)
    # re-index the cells of the good boxes only
    remap = np.full(n_box, -1, dtype=np.int64)
    remap[good] = np.arange(np.count_nonzero(good))
    g2_all = remap[g]
    use2 = g2_all >= 0
    g2 = g2_all[use2]
    n_good = int(np.count_nonzero(good))

    slopes, corr_inv_diag, scale = _solve_boxes(corr[good], sxx[good], sxy[good])
    # pass 3: residual sum of squares
    resid = yc[use2] - np.einsum("kc,ck->c", xc[:, use2], slopes[g2])
    ssr = np.bincount(g2, weights=resid * resid, minlength=n_good)

    inf = _inference(n[good], slopes, corr_inv_diag, scale, ssr, syy[good])
    intercept = y_mean[good] - np.einsum("gk,gk->g", slopes, x_mean[good])
    box_id = kept_ids[good]
    blat, blon = box_centres(box_id, cells.box_size)
    n_sing = int(np.count_nonzero(singular))
    n_const = int(np.count_nonzero(const_y))
    logger.debug(
        "box_regression: %d cells, %d boxes kept, dropped %d (few points), %d (singular), "
        "%d (constant target)",
        cells.y.size,
        n_good,
        n_few,
        n_sing,
        n_const,
    )
    return BoxRegression(
        box_id=box_id,
        lat=blat,
        lon=blon,
        n=n[good].astype(np.int64),
        slopes=slopes,
        intercept=intercept,
        box_size=cells.box_size,
        driver_names=names,
        n_dropped_few_points=n_few,
        n_dropped_singular=n_sing,
        n_dropped_constant_target=n_const,
        **inf,
    )


def box_regression_loop(
    lat: ArrayLike,
    lon: ArrayLike,
    target: ArrayLike,
    drivers: Sequence[ArrayLike],
    box_size: float = 2.0,
    min_points: int = 5,
    *,
    driver_names: Sequence[str] | None = None,
    rcond: float = _RCOND,
    box_ids: ArrayLike | None = None,
) -> BoxRegression:
    """Plain per-box reference of :func:`box_regression`; slow, for tests and benchmarks only.

    Like the original notebooks: for every occupied box, the box's cells are selected with a
    boolean mask over all cells and fitted with :func:`numpy.linalg.lstsq`; the cost grows as
    (number of boxes) x (number of cells). Same parameters, same result (up to rounding) and
    the same rules for dropping boxes as :func:`box_regression`.

    Parameters
    ----------
    lat, lon, target, drivers, box_size, min_points, driver_names, rcond
        As for :func:`box_regression`.
    box_ids : array_like of int, optional
        Fit only these boxes (all occupied boxes when omitted); for timing the loop on a
        subset of boxes and extrapolating. The ``n_dropped_*`` counters then refer to them.

    Returns
    -------
    BoxRegression
        As for :func:`box_regression`.
    """
    min_points = _check_min_points(min_points)
    cells = _prepare_cells(lat, lon, target, drivers, box_size)
    p = cells.x.shape[0]
    names = _driver_names(driver_names, p)
    rows: list[dict[str, object]] = []
    n_few = n_sing = n_const = 0
    todo = np.unique(cells.ids) if box_ids is None else np.unique(np.asarray(box_ids))
    for b in todo:
        sel = cells.ids == b
        y = cells.y[sel]
        x = cells.x[:, sel].T
        n = y.size
        if n < max(min_points, p + 2):
            n_few += 1
            continue
        xm, ym = x.mean(axis=0), y.mean()
        xc, yc = x - xm, y - ym
        sxx = xc.T @ xc
        syy = float(yc @ yc)
        singular, const_y, corr = _degenerate_flags(
            np.array([float(n)]), xm[None], sxx[None], np.array([ym]), np.array([syy]), rcond
        )
        if singular[0]:
            n_sing += 1
            continue
        if const_y[0]:
            n_const += 1
            continue
        design = np.column_stack([np.ones(n), x])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        resid = y - design @ coef
        scale = np.sqrt(np.diag(sxx))
        inf = _inference(
            np.array([float(n)]),
            coef[None, 1:],
            np.diag(np.linalg.inv(corr[0]))[None],
            scale[None],
            np.array([float(resid @ resid)]),
            np.array([syy]),
        )
        rows.append({"box_id": b, "n": n, "slopes": coef[1:], "intercept": coef[0], **inf})

    def stack(key: str, width: int | None) -> NDArray[np.float64]:
        if not rows:
            return np.empty((0,) if width is None else (0, width))
        vals = [np.asarray(r[key]).reshape(-1) for r in rows]
        out = np.concatenate(vals) if width is None else np.stack(vals)
        return out

    box_id = np.array([r["box_id"] for r in rows], dtype=np.int64)
    blat, blon = box_centres(box_id, cells.box_size)
    return BoxRegression(
        box_id=box_id,
        lat=blat,
        lon=blon,
        n=np.array([r["n"] for r in rows], dtype=np.int64),
        slopes=stack("slopes", p),
        intercept=np.array([r["intercept"] for r in rows], dtype=np.float64),
        stderr=stack("stderr", p),
        tvalues=stack("tvalues", p),
        pvalues=stack("pvalues", p),
        r2=stack("r2", None),
        vif=stack("vif", p),
        f_statistic=stack("f_statistic", None),
        f_pvalue=stack("f_pvalue", None),
        box_size=cells.box_size,
        driver_names=names,
        n_dropped_few_points=n_few,
        n_dropped_singular=n_sing,
        n_dropped_constant_target=n_const,
    )


# ---------------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------------
def significant_boxes(
    result: BoxRegression,
    alpha: float = 0.04,
    test: Literal["all_slopes", "f_test"] = "all_slopes",
) -> NDArray[np.bool_]:
    """Return which boxes pass the significance filter (docs/method.md §2.3).

    Parameters
    ----------
    result : BoxRegression
        Output of :func:`box_regression`.
    alpha : float, default 0.04
        Significance level (paper: 0.04); a p-value equal to ``alpha`` passes.
    test : {"all_slopes", "f_test"}, default "all_slopes"
        ``"all_slopes"`` (paper): every slope's two-sided t-test p-value is ``<= alpha``.
        ``"f_test"``: the joint F test of all slopes has p-value ``<= alpha``; keeps boxes where
        one driver genuinely does not matter or DIC and ALK are collinear.

    Returns
    -------
    ndarray of bool, shape (n_box,)
        Use with ``result.select(mask)``.

    Raises
    ------
    ValueError
        If ``alpha`` is not in (0, 1] or ``test`` is unknown.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha!r}")
    if test == "all_slopes":
        return np.all(result.pvalues <= alpha, axis=1)
    if test == "f_test":
        return result.f_pvalue <= alpha
    raise ValueError(f"test must be 'all_slopes' or 'f_test', got {test!r}")


def outlier_mask(
    fco2: ArrayLike,
    sst: ArrayLike,
    dic: ArrayLike,
    alk: ArrayLike,
    *,
    dic_min: float | None = 1500.0,
    alk_min: float | None = 1700.0,
    sst_max: float | None = 40.0,
    fco2_max: float | None = 500.0,
) -> NDArray[np.bool_]:
    """Return the cells that pass the paper's outlier filter (docs/method.md §2.1).

    A cell is valid when all four fields are finite and unmasked and ``dic >= dic_min``,
    ``alk >= alk_min``, ``sst <= sst_max`` and ``fco2 <= fco2_max`` (bounds inclusive). Apply
    it before :func:`box_regression`, e.g. ``fco2 = np.where(mask, fco2, np.nan)``.

    Parameters
    ----------
    fco2, sst, dic, alk : array_like
        Fields of one shape, in µatm, degC, mmol m-3 and mmol m-3. Masked arrays are accepted.
    dic_min, alk_min : float or None, default 1500, 1700
        Lower bounds on DIC and ALK in mmol m-3; ``None`` disables the bound.
    sst_max : float or None, default 40
        Upper bound on SST in degC; ``None`` disables it.
    fco2_max : float or None, default 500
        Upper bound on fCO2 in µatm; ``None`` disables it.

    Returns
    -------
    ndarray of bool
        True where the cell is valid, same shape as the inputs.

    Raises
    ------
    ValueError
        If the fields do not all have the same shape.
    """
    arrays = {"fco2": fco2, "sst": sst, "dic": dic, "alk": alk}
    data: dict[str, NDArray[np.float64]] = {}
    valid: NDArray[np.bool_] | None = None
    for name, a in arrays.items():
        d, invalid = _as_float_and_mask(a)
        if valid is not None and d.shape != valid.shape:
            raise ValueError(f"{name} has shape {d.shape}, expected {valid.shape} like fco2")
        valid = ~invalid if valid is None else valid & ~invalid
        data[name] = d
    assert valid is not None
    with np.errstate(invalid="ignore"):
        if dic_min is not None:
            valid &= data["dic"] >= dic_min
        if alk_min is not None:
            valid &= data["alk"] >= alk_min
        if sst_max is not None:
            valid &= data["sst"] <= sst_max
        if fco2_max is not None:
            valid &= data["fco2"] <= fco2_max
    return valid
