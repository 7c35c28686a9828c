"""Tests of carbon_biomes.core.context: physical context of the biomes (docs/method.md §4)."""

from __future__ import annotations

import numpy as np
import pytest

from carbon_biomes.core.context import (
    ALL_CLASSIFIED,
    CONTEXT_COLUMNS,
    REGION_OCEAN,
    physical_context,
)
from carbon_biomes.core.errors import DiagnosticError, SettingsError

NY, NX = 6, 7
MONTHS = ["2000-11", "2000-12", "2001-01", "2001-02"]
NUMBERS = [1, 3]


def random_case(seed: int = 0):
    """Random labels (30 % unclassified), two fields with masked and NaN cells, unequal areas."""
    rng = np.random.default_rng(seed)
    n = len(MONTHS)
    areas = rng.uniform(0.5, 2.0, (NY, NX)) * 1.0e8
    labels = np.ma.masked_array(
        rng.choice(NUMBERS, (n, NY, NX)).astype(np.int16), mask=rng.random((n, NY, NX)) < 0.3
    )
    masks = {
        "patchy": rng.random((NY, NX)) < 0.7,
        "west": np.zeros((NY, NX), dtype=bool),
        "all": np.ones((NY, NX), dtype=bool),
    }
    masks["west"][:, :3] = True
    fields = []
    for _ in range(n):
        sst = np.ma.masked_array(rng.normal(15, 5, (NY, NX)), mask=rng.random((NY, NX)) < 0.2)
        mld = np.ma.masked_array(rng.uniform(10, 200, (NY, NX)), mask=rng.random((NY, NX)) < 0.2)
        mld[0, 0] = np.nan  # an unmasked NaN counts as missing too
        fields.append({"sst": sst, "mld": mld, "ice": np.zeros((NY, NX))})
    return fields, labels, masks, areas


def brute_force(fields, labels, masks, areas, variables):
    """The means and areas by a loop over cells."""
    n_k = len(NUMBERS)
    shape = (len(variables), len(masks), len(MONTHS), n_k + 2)
    total, moment = np.zeros(shape), np.zeros(shape)
    for v, name in enumerate(variables):
        for r, mask in enumerate(masks.values()):
            for t in range(len(MONTHS)):
                field = np.ma.filled(np.ma.asarray(fields[t][name], dtype=float), np.nan)
                for i in range(NY):
                    for j in range(NX):
                        if not mask[i, j] or not np.isfinite(field[i, j]):
                            continue
                        columns = [n_k + 1]
                        if not labels.mask[t, i, j]:
                            columns += [NUMBERS.index(int(labels[t, i, j])), n_k]
                        for c in columns:
                            total[v, r, t, c] += areas[i, j]
                            moment[v, r, t, c] += areas[i, j] * field[i, j]
    with np.errstate(invalid="ignore"):
        return np.where(total > 0, moment / total, np.nan), total


def test_physical_context_equals_a_loop_over_cells():
    fields, labels, masks, areas = random_case()
    variables = ["sst", "mld"]
    table = physical_context(
        iter(fields), labels, masks, areas, NUMBERS, months=MONTHS, variables=variables
    )
    mean, area = brute_force(fields, labels, masks, areas, variables)
    assert table.mean.shape == (2, 3, 4, 4) and table.area.shape == (2, 3, 4, 4)
    assert table.variables == ("sst", "mld") and table.regions == ("patchy", "west", "all")
    assert table.months == tuple(MONTHS) and table.biome_numbers == (1, 3)
    assert table.columns == (1, 3, ALL_CLASSIFIED, REGION_OCEAN)
    np.testing.assert_allclose(table.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(table.area, area, rtol=1e-12)
    assert np.isfinite(table.mean).all()

    # labels month by month, in blocks, or as one array: the same table
    def blocks():
        yield labels[:1]
        yield labels[1]
        yield labels[2:]

    for given in (list(labels), blocks()):
        again = physical_context(
            fields, given, masks, areas, NUMBERS, months=MONTHS, variables=variables
        )
        np.testing.assert_array_equal(again.mean, table.mean)


def test_months_are_consumed_one_at_a_time():
    fields, labels, masks, areas = random_case(1)
    log: list[str] = []

    def field_stream():
        for t, month in enumerate(fields):
            log.append(f"fields {t}")
            yield month

    def label_stream():
        for t in range(len(MONTHS)):
            log.append(f"labels {t}")
            yield labels[t]

    physical_context(
        field_stream(), label_stream(), masks, areas, NUMBERS, months=MONTHS, variables=["sst"]
    )
    expected = [f"{kind} {t}" for t in range(len(MONTHS)) for kind in ("fields", "labels")]
    assert log == expected


def test_a_planted_field_gives_its_means_weighted_by_area():
    # SST 20 on biome 1, 5 on biome 3, 12 on unclassified cells; the areas differ by cell
    rng = np.random.default_rng(2)
    areas = rng.uniform(0.2, 3.0, (NY, NX)) * 1.0e9
    labels = np.ma.masked_all((1, NY, NX), dtype=np.int16)
    labels[0, :2] = 1
    labels[0, 2:4] = 3
    sst = np.full((NY, NX), 12.0)
    sst[:2], sst[2:4] = 20.0, 5.0
    sst[0, 0] = 1.0e6  # a masked cell of biome 1 with a wild value
    sst = np.ma.masked_array(sst, mask=np.zeros((NY, NX), dtype=bool))
    sst[0, 0] = np.ma.masked
    assert sst.data[0, 0] == 1.0e6
    masks = {"all": np.ones((NY, NX), dtype=bool)}
    table = physical_context(
        [{"sst": sst}], labels, masks, areas, NUMBERS, months=["2009-01"], variables=["sst"]
    )
    mean, area = table.mean[0, 0, 0], table.area[0, 0, 0]
    a1 = areas[:2].sum() - areas[0, 0]  # the masked cell is excluded
    a3, a_rest = areas[2:4].sum(), areas[4:].sum()
    assert mean[0] == pytest.approx(20.0, rel=1e-12) and mean[1] == pytest.approx(5.0, rel=1e-12)
    assert area[0] == pytest.approx(a1, rel=1e-12) and area[1] == pytest.approx(a3, rel=1e-12)
    assert mean[2] == pytest.approx((20.0 * a1 + 5.0 * a3) / (a1 + a3), rel=1e-12)
    assert mean[3] == pytest.approx(
        (20.0 * a1 + 5.0 * a3 + 12.0 * a_rest) / (a1 + a3 + a_rest), rel=1e-12
    )
    assert area[3] == pytest.approx(areas.sum() - areas[0, 0], rel=1e-12)
    # area weights matter: unweighted, the classified mean would differ
    unweighted = (20.0 * (2 * NX - 1) + 5.0 * 2 * NX) / (4 * NX - 1)
    assert abs(mean[2] - unweighted) > 0.1

    # two cells of biome 1 of areas 1 and 3 and values 10 and 20: 17.5, not 15
    labels = np.ma.masked_all((1, 1, 2), dtype=np.int16)
    labels[0, 0] = 1
    table = physical_context(
        [{"sst": np.array([[10.0, 20.0]])}], labels, {"r": np.ones((1, 2), dtype=bool)},
        np.array([[1.0, 3.0]]), [1], months=["2009-01"], variables=["sst"],
    )  # fmt: skip
    assert table.mean[0, 0, 0, 0] == pytest.approx(17.5, rel=1e-12)


def test_cells_without_a_valid_field_or_biome_give_nan():
    fields, labels, masks, areas = random_case(3)
    for month in fields:
        month["sst"] = np.ma.masked_array(month["sst"], mask=True)  # no SST at all
    labels = labels.copy()
    labels[1] = np.ma.masked  # nothing classified in 2000-12
    table = physical_context(
        fields, labels, masks, areas, NUMBERS, months=MONTHS, variables=["sst", "mld"]
    )
    assert np.isnan(table.mean[0]).all() and (table.area[0] == 0).all()
    assert np.isnan(table.mean[1, :, 1, :3]).all()
    assert np.isfinite(table.mean[1, :, 1, 3]).all()


def test_seasonal_cycle_of_planted_monthly_values():
    # three years: biome 1 carries 10 + month + (-1, 0, 1) by year, biome 3 twice as much;
    # mean 10 + month and 20 + 2 month, standard deviation over the years 1 and 2
    months = [f"{y}-{m:02d}" for y in (2001, 2002, 2003) for m in range(1, 13)]
    labels = np.ma.masked_all((36, NY, NX), dtype=np.int16)
    labels[:, :3] = 1
    labels[:, 3:5] = 3
    fields = []
    for t in range(36):
        year, month = divmod(t, 12)
        value = 10.0 + month + (year - 1)
        field = np.full((NY, NX), 99.0)
        field[:3], field[3:5] = value, 2.0 * value
        fields.append({"sst": field})
    masks = {"all": np.ones((NY, NX), dtype=bool), "north": np.zeros((NY, NX), dtype=bool)}
    masks["north"][3:] = True
    areas = np.random.default_rng(4).uniform(1.0, 2.0, (NY, NX))
    table = physical_context(
        fields, labels, masks, areas, [1, 3, 4], months=months, variables=["sst"]
    )
    mean, std = table.seasonal("sst")
    assert mean.shape == std.shape == (2, 5, 12)
    calendar = np.arange(12.0)
    np.testing.assert_allclose(mean[0, 0], 10.0 + calendar, rtol=1e-12)
    np.testing.assert_allclose(std[0, 0], 1.0, rtol=1e-12)
    np.testing.assert_allclose(mean[0, 1], 20.0 + 2.0 * calendar, rtol=1e-12)
    np.testing.assert_allclose(std[0, 1], 2.0, rtol=1e-12)
    assert np.isnan(mean[:, 2]).all() and np.isnan(std[:, 2]).all()  # biome 4 never occurs
    assert np.isnan(mean[1, 0]).all()  # no biome-1 cell in the north
    np.testing.assert_allclose(mean[1, 1], 20.0 + 2.0 * calendar, rtol=1e-12)
    with pytest.raises(KeyError, match="no variable 'sss'"):
        table.seasonal("sss")


def test_records_are_long_format_rows():
    fields, labels, masks, areas = random_case(5)
    table = physical_context(
        fields, labels, masks, areas, NUMBERS, months=MONTHS, variables=["sst", "mld"]
    )
    records = table.records()
    assert len(records) == 3 * 4 * 4 * 2
    assert all(tuple(row) == CONTEXT_COLUMNS for row in records)
    assert {row["biome"] for row in records} == {1, 3, ALL_CLASSIFIED, REGION_OCEAN}
    row = next(
        row for row in records
        if (row["region"], row["month"], row["biome"], row["variable"])
        == ("west", "2001-01", REGION_OCEAN, "mld")
    )  # fmt: skip
    r, t, v = table.region_index("west"), 2, table.variable_index("mld")
    assert row["mean"] == table.mean[v, r, t, 3]
    assert row["area_km2"] == pytest.approx(table.area[v, r, t, 3] / 1.0e6)
    assert len(table.rows()) == len(records) and table.rows()[0][0] == "patchy"


def test_bad_input_raises_naming_the_problem():
    fields, labels, masks, areas = random_case(6)

    def run(fields=fields, labels=labels, masks=masks, areas=areas, months=MONTHS,
            variables=("sst", "mld"), numbers=NUMBERS):  # fmt: skip
        return physical_context(
            fields, labels, masks, areas, numbers, months=months, variables=variables
        )

    lacking = [dict(month) for month in fields]
    del lacking[1]["mld"]
    with pytest.raises(DiagnosticError, match="2000-12: no field of variable 'mld'"):
        run(fields=lacking)
    wrong = [dict(month) for month in fields]
    wrong[2]["sst"] = wrong[2]["sst"][:, :-1]
    with pytest.raises(DiagnosticError, match=r"2001-01: the field of variable 'sst' has shape"):
        run(fields=wrong)
    with pytest.raises(DiagnosticError, match="native labels have shape"):
        run(labels=labels[:, :-1])
    with pytest.raises(DiagnosticError, match="mask of region 'west'"):
        run(masks={"west": masks["west"][:-1]})
    with pytest.raises(DiagnosticError, match="the fields have 3 months, but 4 month names"):
        run(fields=fields[:3])
    with pytest.raises(DiagnosticError, match="more months than the 3 month names"):
        run(months=MONTHS[:3])
    with pytest.raises(DiagnosticError, match="native labels end after 3 month"):
        run(labels=labels[:3])
    with pytest.raises(DiagnosticError, match="native labels have more months"):
        run(fields=fields[:3], months=MONTHS[:3])
    with pytest.raises(DiagnosticError, match=r"labels \[3\] are not biome numbers"):
        run(numbers=[1, 2])
    with pytest.raises(DiagnosticError, match="not one mapping"):
        run(fields=fields[0])
    holes = areas.copy()
    holes[0, 0] = np.nan
    with pytest.raises(DiagnosticError, match=r"region 'patchy': 1 cell\(s\) without a finite"):
        run(areas=holes)
    with pytest.raises(SettingsError, match="variables"):
        run(variables=[])
    with pytest.raises(SettingsError, match="repeat"):
        run(variables=["sst", "sst"])
    with pytest.raises(DiagnosticError, match="months must be like"):
        run(months=["2000-13", *MONTHS[1:]])
