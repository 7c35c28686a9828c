"""Tests of carbon_biomes.regression against statsmodels, PyCO2SYS and the lattice rules."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats.outliers_influence import variance_inflation_factor

from carbon_biomes.core.regression import (
    BoxRegression,
    box_centres,
    box_index,
    box_lattice,
    box_regression,
    box_regression_loop,
    outlier_mask,
    significant_boxes,
)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def reference_box_id(lat: float, lon: float, b: float) -> int:
    """Brute force: scan the lattice for the box whose half-open interval holds the point."""
    n_lat, n_lon = round(180 / b), round(360 / b)
    w = ((lon + 180.0) % 360.0) - 180.0
    i = next(k for k in range(n_lat) if -90 + k * b <= lat < -90 + (k + 1) * b or k == n_lat - 1)
    j = next(k for k in range(n_lon) if -180 + k * b <= w < -180 + (k + 1) * b)
    return i * n_lon + j


def random_fields(rng: np.random.Generator, shape: tuple[int, ...], nan_frac: float = 0.1):
    """Three partly correlated drivers and a target with moderate noise (p-values of all sizes)."""
    sst = rng.normal(15, 2, shape)
    dic = rng.normal(2000, 20, shape) - 3 * (sst - 15)
    alk = 2300 + 0.6 * (dic - 2000) + rng.normal(0, 15, shape)
    target = (
        300
        + rng.normal(0, 3) * sst
        + rng.normal(0, 0.3) * dic
        - rng.normal(0, 0.3) * alk
        + rng.normal(0, 15, shape)
    )
    target[rng.random(shape) < nan_frac] = np.nan
    dic[rng.random(shape) < nan_frac / 2] = np.nan
    return target, [sst, dic, alk]


def assert_matches_statsmodels(
    res: BoxRegression,
    ids: np.ndarray,
    target: np.ndarray,
    drivers: list[np.ndarray],
    valid: np.ndarray,
) -> None:
    """Refit every box of `res` with statsmodels OLS from the cells' box ids."""
    assert res.n_boxes > 0
    for k, b in enumerate(res.box_id):
        sel = (ids == b) & valid
        assert sel.sum() == res.n[k]
        x = np.column_stack([d[sel] for d in drivers])
        design = sm.add_constant(x, has_constant="add")
        fit = sm.OLS(target[sel], design).fit()
        np.testing.assert_allclose(res.slopes[k], fit.params[1:], rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(res.intercept[k], fit.params[0], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(res.stderr[k], fit.bse[1:], rtol=1e-6)
        np.testing.assert_allclose(res.tvalues[k], fit.tvalues[1:], rtol=1e-6)
        np.testing.assert_allclose(res.pvalues[k], fit.pvalues[1:], rtol=1e-4, atol=1e-300)
        np.testing.assert_allclose(res.r2[k], fit.rsquared, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(res.f_statistic[k], fit.fvalue, rtol=1e-6)
        np.testing.assert_allclose(res.f_pvalue[k], fit.f_pvalue, rtol=1e-4, atol=1e-300)
        if x.shape[1] > 1:
            vif = [variance_inflation_factor(design, i) for i in range(1, design.shape[1])]
            np.testing.assert_allclose(res.vif[k], vif, rtol=1e-6)
        else:
            np.testing.assert_allclose(res.vif[k], 1.0)


def valid_cells(target, drivers) -> np.ndarray:
    ok = ~np.ma.getmaskarray(target) & np.isfinite(np.ma.getdata(target))
    for d in drivers:
        ok &= ~np.ma.getmaskarray(d) & np.isfinite(np.ma.getdata(d))
    return ok


# ---------------------------------------------------------------------------------------------
# lattice
# ---------------------------------------------------------------------------------------------
def test_box_lattice_shapes():
    assert box_lattice(2.0) == (90, 180)
    assert box_lattice(0.25) == (720, 1440)
    assert box_lattice(1.5) == (120, 240)
    assert box_lattice(180) == (1, 2)


@pytest.mark.parametrize("b", [2.0, 1.5, 0.5, 5.0])
def test_box_index_matches_brute_force(b):
    rng = np.random.default_rng(3)
    lat = rng.uniform(-90, 90, 400)
    lon = rng.uniform(-400, 400, 400)
    # exact boundaries, poles and the dateline
    lat = np.concatenate([lat, [-90.0, 90.0, -88.0, 0.0, 89.999, -90 + b, 90 - b]])
    lon = np.concatenate([lon, [-180.0, 180.0, 0.0, 360.0, -0.0001, 359.9999, 179.9999]])
    ids = box_index(lat, lon, b)
    expected = [reference_box_id(a, o, b) for a, o in zip(lat, lon, strict=True)]
    np.testing.assert_array_equal(ids, expected)


def test_box_index_rules_and_centres():
    n_lat, n_lon = box_lattice(2.0)
    ids = box_index([-90.0, 90.0, -88.0, -88.0001, 0.0], [-180.0, 179.99, 180.0, 359.0, 0.0])
    assert ids[0] == 0  # south-west corner
    assert ids[1] == (n_lat - 1) * n_lon + (n_lon - 1)  # lat = 90 goes to the last row
    assert ids[2] == 1 * n_lon + 0  # lat -88 starts row 1; lon 180 wraps to -180
    assert ids[3] == 0 * n_lon + 89  # lat -88.0001 is row 0; lon 359 -> -1 -> column 89
    assert ids[4] == 45 * n_lon + 90
    lat_c, lon_c = box_centres(ids, 2.0)
    np.testing.assert_allclose(lat_c, [-89.0, 89.0, -87.0, -89.0, 1.0])
    np.testing.assert_allclose(lon_c, [-179.0, 179.0, -179.0, -1.0, 1.0])
    assert box_index([np.nan], [0.0])[0] == -1
    # every id maps back to a centre inside its box
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-90, 90, 1000), rng.uniform(-180, 180, 1000)
    lc, oc = box_centres(box_index(lat, lon, 3.0), 3.0)
    assert np.all(np.abs(lc - lat) <= 1.5) and np.all(np.abs(oc - lon) <= 1.5)


def test_box_index_errors():
    with pytest.raises(ValueError, match="latitudes must lie in"):
        box_index([91.0], [0.0])
    with pytest.raises(ValueError, match="shape"):
        box_index([0.0, 1.0], [0.0])
    with pytest.raises(ValueError, match="box ids must lie"):
        box_centres([90 * 180], 2.0)


# ---------------------------------------------------------------------------------------------
# oracle: statsmodels
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("lon_convention", ["0_360", "-180_180"])
def test_curvilinear_matches_statsmodels(seed, lon_convention):
    rng = np.random.default_rng(seed)
    shape = (40, 50)
    # a "curvilinear" grid: random points concentrated in a few boxes
    lat = rng.uniform(-12, 12, shape)
    lon = rng.uniform(-14, 14, shape)
    if lon_convention == "0_360":
        lon = np.mod(lon, 360.0)
    target, drivers = random_fields(rng, shape)
    # masked arrays are honoured
    target = np.ma.masked_array(target, mask=rng.random(shape) < 0.05)
    res = box_regression(lat, lon, target, drivers, box_size=4.0)
    valid = valid_cells(target, drivers)
    assert_matches_statsmodels(res, box_index(lat, lon, 4.0), np.ma.getdata(target), drivers, valid)
    assert np.all(np.diff(res.box_id) > 0)
    lat_c, lon_c = box_centres(res.box_id, 4.0)
    np.testing.assert_array_equal(res.lat, lat_c)
    np.testing.assert_array_equal(res.lon, lon_c)
    assert res.driver_names == ("sst", "dic", "alk")


@pytest.mark.parametrize("lon0", [0.25, -179.75])
def test_regular_grid_1d_coordinates_match_statsmodels(lon0):
    rng = np.random.default_rng(7)
    lat = np.arange(-30, 30, 1.0) + 0.5
    lon = lon0 + np.arange(0, 40, 1.0)
    shape = (lat.size, lon.size)
    target, drivers = random_fields(rng, shape)
    res = box_regression(lat, lon, target, drivers, box_size=5.0, min_points=8)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    assert_matches_statsmodels(
        res, box_index(la, lo, 5.0), target, drivers, valid_cells(target, drivers)
    )
    # broadcasting the 1-D axes gives the same result as passing 2-D coordinates
    res2 = box_regression(la, lo, target, drivers, box_size=5.0, min_points=8)
    np.testing.assert_array_equal(res.box_id, res2.box_id)
    np.testing.assert_allclose(res.slopes, res2.slopes, rtol=1e-12)


def test_longitude_conventions_give_identical_results():
    rng = np.random.default_rng(11)
    lat = rng.uniform(-60, 60, 3000)
    lon = rng.uniform(-180, 180, 3000)
    target, drivers = random_fields(rng, (3000,), nan_frac=0.0)
    a = box_regression(lat, lon, target, drivers, 10.0)
    b = box_regression(lat, np.mod(lon, 360.0), target, drivers, 10.0)
    c = box_regression(lat, lon + 720.0, target, drivers, 10.0)
    for other in (b, c):
        np.testing.assert_array_equal(a.box_id, other.box_id)
        np.testing.assert_allclose(a.slopes, other.slopes, rtol=1e-10)


def test_one_and_two_drivers_match_statsmodels():
    rng = np.random.default_rng(5)
    lat = rng.uniform(0, 10, 600)
    lon = rng.uniform(0, 10, 600)
    target, drivers = random_fields(rng, (600,))
    ids = box_index(lat, lon, 5.0)
    for drv in (drivers[:1], drivers[1:]):
        res = box_regression(lat, lon, target, drv, 5.0)
        assert res.slopes.shape[1] == len(drv)
        assert_matches_statsmodels(res, ids, target, drv, valid_cells(target, drv))
    assert box_regression(lat, lon, target, drivers[:2], 5.0).driver_names == (
        "driver_0",
        "driver_1",
    )


def test_loop_reference_equals_vectorized():
    rng = np.random.default_rng(21)
    shape = (30, 60)
    lat = rng.uniform(-20, 20, shape)
    lon = rng.uniform(100, 260, shape)  # crosses the dateline
    target, drivers = random_fields(rng, shape)
    # one box with a constant driver, which both must drop
    ids = box_index(lat, lon, 5.0)
    first = ids == np.bincount(ids.ravel()).argmax()
    drivers[0][first] = 12.0
    a = box_regression(lat, lon, target, drivers, 5.0)
    b = box_regression_loop(lat, lon, target, drivers, 5.0)
    np.testing.assert_array_equal(a.box_id, b.box_id)
    np.testing.assert_array_equal(a.n, b.n)
    for name in ("slopes", "intercept", "stderr", "pvalues", "r2", "vif", "f_pvalue"):
        np.testing.assert_allclose(
            getattr(a, name), getattr(b, name), rtol=1e-6, atol=1e-300, err_msg=name
        )
    assert a.n_dropped_singular == b.n_dropped_singular == 1
    assert a.n_dropped_few_points == b.n_dropped_few_points


# ---------------------------------------------------------------------------------------------
# degenerate boxes
# ---------------------------------------------------------------------------------------------
def _three_boxes(rng, n_per_box=30):
    """Cells in three 2° boxes along the equator; returns lat, lon, target, drivers, ids."""
    lat = np.concatenate([rng.uniform(0.1, 1.9, n_per_box) for _ in range(3)])
    lon = np.concatenate([rng.uniform(2 * k + 0.1, 2 * k + 1.9, n_per_box) for k in range(3)])
    target, drivers = random_fields(rng, (3 * n_per_box,), nan_frac=0.0)
    return lat, lon, target, drivers, box_index(lat, lon, 2.0)


@pytest.mark.parametrize("kind", ["constant", "collinear", "collinear_float32", "zero"])
def test_singular_box_is_dropped_and_others_unaffected(kind):
    rng = np.random.default_rng(4)
    lat, lon, target, drivers, ids = _three_boxes(rng)
    bad = ids == ids[35]  # the middle box
    sst, dic, alk = (d.copy() for d in drivers)
    if kind == "constant":
        sst[bad] = 17.3
    elif kind == "collinear":
        alk[bad] = 0.7 * dic[bad] + 0.1 * sst[bad] + 812.3
    elif kind == "collinear_float32":
        alk[bad] = (2 * dic[bad]).astype(np.float32)
        dic[bad] = dic[bad].astype(np.float32)
    else:
        dic[bad] = 0.0
    res = box_regression(lat, lon, target, [sst, dic, alk], 2.0)
    assert res.n_dropped_singular == 1
    assert res.n_dropped_few_points == 0
    assert ids[35] not in res.box_id
    assert len(res) == 2
    assert np.all(np.isfinite(res.slopes)) and np.all(np.isfinite(res.pvalues))
    clean = box_regression(
        lat[~bad], lon[~bad], target[~bad], [d[~bad] for d in (sst, dic, alk)], 2.0
    )
    np.testing.assert_array_equal(res.box_id, clean.box_id)
    np.testing.assert_allclose(res.slopes, clean.slopes, rtol=1e-12)
    np.testing.assert_allclose(res.pvalues, clean.pvalues, rtol=1e-10)


def test_strong_but_not_exact_collinearity_is_kept():
    rng = np.random.default_rng(8)
    lat, lon, target, drivers, ids = _three_boxes(rng, 200)
    sst, dic, alk = drivers
    alk = 0.9 * dic + rng.normal(0, 0.05, dic.shape)  # r ~ 0.99999
    res = box_regression(lat, lon, target, [sst, dic, alk], 2.0)
    assert res.n_dropped_singular == 0 and len(res) == 3
    assert np.all(res.vif[:, 1] > 1e3)
    assert_matches_statsmodels(res, ids, target, [sst, dic, alk], np.ones(ids.shape, bool))


def test_constant_target_is_dropped_and_counted():
    rng = np.random.default_rng(9)
    lat, lon, target, drivers, ids = _three_boxes(rng)
    target = target.copy()
    target[ids == ids[0]] = 380.0
    res = box_regression(lat, lon, target, drivers, 2.0)
    assert res.n_dropped_constant_target == 1 and len(res) == 2
    assert ids[0] not in res.box_id


def test_min_points():
    rng = np.random.default_rng(10)
    lat, lon, target, drivers, ids = _three_boxes(rng, 30)
    keep = np.ones(ids.size, bool)
    keep[np.flatnonzero(ids == ids[0])[4:]] = False  # first box: 4 cells
    lat, lon, target, ids = lat[keep], lon[keep], target[keep], ids[keep]
    drivers = [d[keep] for d in drivers]
    res = box_regression(lat, lon, target, drivers, 2.0)  # 4 < min_points = 5
    assert len(res) == 2 and res.n_dropped_few_points == 1
    # with 3 drivers a box needs n >= 5 (one residual degree of freedom), whatever min_points
    assert len(box_regression(lat, lon, target, drivers, 2.0, min_points=3)) == 2
    # with one driver, 4 points suffice when min_points allows it
    res1 = box_regression(lat, lon, target, drivers[:1], 2.0, min_points=4)
    assert len(res1) == 3 and res1.n_dropped_few_points == 0
    assert_matches_statsmodels(res1, ids, target, drivers[:1], np.ones(ids.size, bool))
    res2 = box_regression(lat, lon, target, drivers, 2.0, min_points=31)
    assert len(res2) == 0 and res2.n_dropped_few_points == 3
    assert res2.slopes.shape == (0, 3)


def test_all_invalid_gives_empty_result():
    lat = np.zeros(10)
    lon = np.zeros(10)
    target = np.full(10, np.nan)
    res = box_regression(lat, lon, target, [np.ones(10)] * 3)
    assert len(res) == 0 and res.n_dropped_few_points == 0


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------
def test_value_errors():
    rng = np.random.default_rng(0)
    lat = np.linspace(-80, 80, 20)
    lon = np.linspace(0, 350, 30)
    target = rng.normal(size=(20, 30))
    d = [rng.normal(size=(20, 30)) for _ in range(3)]
    with pytest.raises(ValueError, match="at least one driver"):
        box_regression(lat, lon, target, [])
    with pytest.raises(ValueError, match="driver 1 has shape"):
        box_regression(lat, lon, target, [d[0], d[1][:, :5], d[2]])
    with pytest.raises(ValueError, match="lat .* and lon"):
        box_regression(lat[:5], lon, target, d)
    with pytest.raises(ValueError, match="lat .* and lon"):
        box_regression(lon, lat, target, d)  # swapped 1-D axes
    with pytest.raises(ValueError, match=r"latitudes must lie in \[-90, 90\]"):
        box_regression(lat * 2, lon, target, d)
    for bad in (0.0, -2.0, np.nan, np.inf, "x"):
        with pytest.raises(ValueError, match="box_size"):
            box_regression(lat, lon, target, d, box_size=bad)
    for bad in (7.0, 0.7, 400.0):
        with pytest.raises(ValueError, match="divide both 180 and 360"):
            box_regression(lat, lon, target, d, box_size=bad)
    with pytest.raises(ValueError, match="min_points"):
        box_regression(lat, lon, target, d, min_points=0)
    with pytest.raises(ValueError, match="driver names"):
        box_regression(lat, lon, target, d, driver_names=["a"])


# ---------------------------------------------------------------------------------------------
# oracle: PyCO2SYS sensitivities
# ---------------------------------------------------------------------------------------------
def test_slopes_match_pyco2sys_sensitivities():
    """Box RCs on PyCO2SYS fields equal PyCO2SYS's own derivatives at the box's base state."""
    import PyCO2SYS as pyco2  # noqa: N813 (the package's documented alias)

    rng = np.random.default_rng(2025)
    n_box, n_cell = 60, 40
    # base states: T from -1 to 28 degC, DIC and ALK realistic for that temperature
    t0 = np.linspace(-1.0, 28.0, n_box)
    dic0 = 2160.0 - 7.0 * (t0 + 1.0) + rng.normal(0, 20, n_box)  # µmol/kg
    alk0 = 2290.0 + 2.0 * (t0 + 1.0) + rng.normal(0, 15, n_box)
    # independent small perturbations inside each box
    dt = rng.uniform(-0.3, 0.3, (n_box, n_cell))
    dd = rng.uniform(-4.0, 4.0, (n_box, n_cell))
    da = rng.uniform(-4.0, 4.0, (n_box, n_cell))
    sst = t0[:, None] + dt
    dic = dic0[:, None] + dd
    alk = alk0[:, None] + da

    def fco2(t, d, a):
        out = pyco2.sys(par1=a, par2=d, par1_type=1, par2_type=2, salinity=35.0, temperature=t)
        return np.asarray(out["fCO2"])

    f = fco2(sst, dic, alk)
    # place the boxes on the 2° lattice: box k = lattice row 20 + k // 30, column k % 30
    row = 20 + np.arange(n_box) // 30
    col = np.arange(n_box) % 30
    lat = -90 + 2.0 * row[:, None] + rng.uniform(0.01, 1.99, (n_box, n_cell))
    lon = -180 + 2.0 * col[:, None] + rng.uniform(0.01, 1.99, (n_box, n_cell))
    res = box_regression(lat, lon, f, [sst, dic, alk], 2.0)
    assert len(res) == n_box
    np.testing.assert_array_equal(res.box_id, np.sort(row * 180 + col))
    order = np.argsort(row * 180 + col)  # rows of res follow box ids

    # central finite differences of PyCO2SYS at the base state (µatm per degC, per µmol/kg)
    h_t, h_c = 0.01, 0.1
    d_t = (fco2(t0 + h_t, dic0, alk0) - fco2(t0 - h_t, dic0, alk0)) / (2 * h_t)
    d_d = (fco2(t0, dic0 + h_c, alk0) - fco2(t0, dic0 - h_c, alk0)) / (2 * h_c)
    d_a = (fco2(t0, dic0, alk0 + h_c) - fco2(t0, dic0, alk0 - h_c)) / (2 * h_c)
    truth = np.column_stack([d_t, d_d, d_a])[order]
    rel_err = np.abs(res.slopes - truth) / np.abs(truth)
    assert np.all(np.median(rel_err, axis=0) < 0.10), np.median(rel_err, axis=0)
    # docs/method.md §6: dln fCO2/dT ~ 0.0423 per degC; dfCO2/dALK < 0, of the size of dfCO2/dDIC
    base_f = fco2(t0, dic0, alk0)[order]
    np.testing.assert_allclose(np.median(res.slopes[:, 0] / base_f), 0.0423, rtol=0.1)
    assert np.all(res.slopes[:, 2] < 0) and np.all(res.slopes[:, 1] > 0)
    assert np.all(np.abs(res.slopes[:, 2] / res.slopes[:, 1]) > 0.6)
    # nearly perfect fits: all three slopes are significant
    assert significant_boxes(res).all()


# ---------------------------------------------------------------------------------------------
# filters and selection
# ---------------------------------------------------------------------------------------------
def test_outlier_mask():
    fco2 = np.array([400.0, 500.0, 500.1, 300.0, 300.0, 300.0, np.nan, 300.0, 300.0])
    sst = np.array([10.0, 40.0, 10.0, 40.1, 10.0, 10.0, 10.0, 10.0, 10.0])
    dic = np.array([2000.0, 1500.0, 2000.0, 2000.0, 1499.9, 2000.0, 2000.0, 2000.0, 2000.0])
    alk = np.array([2300.0, 1700.0, 2300.0, 2300.0, 2300.0, 1699.0, 2300.0, 2300.0, 2300.0])
    alk_masked = np.ma.masked_array(alk, mask=[0, 0, 0, 0, 0, 0, 0, 1, 0])
    got = outlier_mask(fco2, sst, dic, alk_masked)
    np.testing.assert_array_equal(got, [1, 1, 0, 0, 0, 0, 0, 0, 1])
    # bounds are settings; None disables one
    got = outlier_mask(fco2, sst, dic, alk, fco2_max=None, sst_max=50.0)
    np.testing.assert_array_equal(got, [1, 1, 1, 1, 0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="shape"):
        outlier_mask(fco2, sst[:3], dic, alk)
    # 2-D input keeps its shape
    assert outlier_mask(*(a.reshape(3, 3) for a in (fco2, sst, dic, alk))).shape == (3, 3)


def test_significant_boxes_and_select():
    rng = np.random.default_rng(12)
    lat = rng.uniform(-40, 40, 5000)
    lon = rng.uniform(-60, 60, 5000)
    target, drivers = random_fields(rng, (5000,), nan_frac=0.0)
    target = target + rng.normal(0, 20, 5000)  # weaker signal: a mix of p-values
    res = box_regression(lat, lon, target, drivers, 10.0)
    mask = significant_boxes(res)
    np.testing.assert_array_equal(mask, np.all(res.pvalues <= 0.04, axis=1))
    assert 0 < mask.sum() < len(res)
    np.testing.assert_array_equal(significant_boxes(res, 0.5), np.all(res.pvalues <= 0.5, 1))
    np.testing.assert_array_equal(significant_boxes(res, test="f_test"), res.f_pvalue <= 0.04)
    sub = res.select(mask)
    assert len(sub) == mask.sum()
    np.testing.assert_array_equal(sub.box_id, res.box_id[mask])
    np.testing.assert_array_equal(sub.slopes, res.slopes[mask])
    np.testing.assert_array_equal(sub.vif, res.vif[mask])
    assert sub.n_dropped_few_points == res.n_dropped_few_points
    np.testing.assert_array_equal(res.select(np.flatnonzero(mask)).box_id, sub.box_id)
    with pytest.raises(ValueError, match="one entry per box"):
        res.select(mask[:-1])
    with pytest.raises(ValueError, match="increasing"):
        res.select([2, 1])
    with pytest.raises(ValueError, match="alpha"):
        significant_boxes(res, 0.0)
    with pytest.raises(ValueError, match="test must be"):
        significant_boxes(res, test="bonferroni")
