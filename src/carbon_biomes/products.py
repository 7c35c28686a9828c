"""Build the output products of each stage: cubes, table rows and figures (nothing is saved here).

The diagnostic scripts save what these functions return and record its provenance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import cf_units
import iris
import iris.coords
import iris.cube
import numpy as np
from matplotlib.figure import Figure

from carbon_biomes import plotting
from carbon_biomes.detection import DRIVER_UNITS, DetectionResult, scan_table
from carbon_biomes.inputs import DatasetFields
from carbon_biomes.output import box_lattice_coords, box_lattice_cube, flag_attributes

__all__ = [
    "LABEL_FILL",
    "biome_map_figure",
    "centroid_rows",
    "dendrogram_figure",
    "detection_metric_rows",
    "month_time_coord",
    "rc_bars_figure",
    "regression_cubes",
    "scan_figure",
    "scan_rows",
]

#: Fill value of biome label variables.
LABEL_FILL = -1
_DRIVER_LONG = {"sst": "sea surface temperature", "dic": "DIC", "alk": "alkalinity"}


def month_time_coord(months: Sequence[str], calendar: str = "standard") -> iris.coords.DimCoord:
    """A CF time coordinate for ``YYYY-MM`` months: mid-month points with month bounds."""
    units = cf_units.Unit("days since 1850-01-01", calendar=calendar)
    starts, ends = [], []
    for month in months:
        year, number = (int(part) for part in month.split("-"))
        starts.append(units.date2num(dt.datetime(year, number, 1)))
        following = dt.datetime(year + number // 12, number % 12 + 1, 1)
        ends.append(units.date2num(following))
    starts_a, ends_a = np.asarray(starts, float), np.asarray(ends, float)
    return iris.coords.DimCoord(
        0.5 * (starts_a + ends_a),
        bounds=np.column_stack([starts_a, ends_a]),
        standard_name="time",
        var_name="time",
        units=units,
    )


def _lattice_time_cube(
    data: np.ma.MaskedArray,
    months: Sequence[str],
    box_size: float,
    *,
    var_name: str,
    long_name: str,
    units: str,
    attributes: Mapping[str, Any] | None = None,
) -> iris.cube.Cube:
    """A (time, lat, lon) cube on the box lattice, time = the given months."""
    lat, lon = box_lattice_coords(box_size)
    return iris.cube.Cube(
        data,
        var_name=var_name,
        long_name=long_name,
        units=units,
        attributes=dict(attributes or {}),
        dim_coords_and_dims=[(month_time_coord(months), 0), (lat, 1), (lon, 2)],
    )


def _stack_months(
    cubes_per_month: Sequence[iris.cube.Cube], months: Sequence[str], box_size: float
) -> iris.cube.Cube:
    """Stack (lat, lon) lattice cubes of several months into one (time, lat, lon) cube."""
    first = cubes_per_month[0]
    return _lattice_time_cube(
        np.ma.stack([cube.data for cube in cubes_per_month]),
        months,
        box_size,
        var_name=first.var_name,
        long_name=first.long_name,
        units=str(first.units),
        attributes=first.attributes.locals,
    )


def regression_cubes(result: DetectionResult) -> iris.cube.CubeList:
    """Box regression of the reference month(s) on the box lattice: RCs, p-values, R², n, VIFs.

    All fitted boxes are written; ``significant`` marks those kept for clustering.
    """
    per_variable: dict[str, list[iris.cube.Cube]] = {}
    box_size = result.settings.box_size
    for reg in result.regressions:
        boxes = reg.all_boxes
        specs: list[tuple[str, np.ndarray, str, str, Any]] = []
        for d, driver in enumerate(boxes.driver_names):
            long = _DRIVER_LONG.get(driver, driver)
            specs += [
                (
                    f"rc_{driver}",
                    boxes.slopes[:, d],
                    f"regression coefficient of fCO2 on {long}",
                    DRIVER_UNITS.get(driver, "1"),
                    np.float32,
                ),
                (
                    f"stderr_{driver}",
                    boxes.stderr[:, d],
                    f"standard error of the regression coefficient on {long}",
                    DRIVER_UNITS.get(driver, "1"),
                    np.float32,
                ),
                (
                    f"pvalue_{driver}",
                    boxes.pvalues[:, d],
                    f"two-sided t-test p-value of the regression coefficient on {long}",
                    "1",
                    np.float64,
                ),
                (
                    f"vif_{driver}",
                    boxes.vif[:, d],
                    f"variance inflation factor of {long}",
                    "1",
                    np.float32,
                ),
            ]
        specs += [
            ("intercept", boxes.intercept, "intercept of the fCO2 regression", "uatm", np.float32),
            (
                "r2",
                boxes.r2,
                "coefficient of determination of the fCO2 regression",
                "1",
                np.float32,
            ),
            (
                "f_pvalue",
                boxes.f_pvalue,
                "p-value of the joint F-test of the slopes",
                "1",
                np.float64,
            ),
            ("n_cells", boxes.n, "number of native grid cells used in the box fit", "1", np.int32),
            (
                "significant",
                reg.significant.astype(np.int8),
                "box passes the significance filter and is clustered",
                "1",
                np.int8,
            ),
            ("ocean_area", reg.stats.area, "ocean area of the box", "m2", np.float64),
        ]
        for var_name, values, long_name, units, dtype in specs:
            cube = box_lattice_cube(
                values,
                boxes.box_id,
                box_size,
                var_name=var_name,
                long_name=long_name,
                units=units,
                dtype=dtype,
            )
            per_variable.setdefault(var_name, []).append(cube)
    return iris.cube.CubeList(
        _stack_months(cubes, result.months, box_size) for cubes in per_variable.values()
    )


def detection_label_cubes(result: DetectionResult) -> iris.cube.CubeList:
    """Biome labels of the clustered boxes on the lattice (time = reference months)."""
    flags = flag_attributes(result.names)
    cubes = []
    for m in range(len(result.months)):
        members = result.month_of_box == m
        cubes.append(
            box_lattice_cube(
                result.labels[members],
                result.box_id[members],
                result.settings.box_size,
                var_name="biome",
                long_name="carbon biome detected by Ward clustering",
                units="1",
                dtype=np.int16,
                fill_value=LABEL_FILL,
                attributes=flags,
            )
        )
    cube = _stack_months(cubes, result.months, result.settings.box_size)
    return iris.cube.CubeList([cube])


def centroid_rows(result: DetectionResult) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the biome centroid table."""
    drivers = list(result.regressions[0].all_boxes.driver_names)
    header = (
        ["dataset", "biome_number", "biome", "n_boxes", "area_km2", "mean_latitude"]
        + [f"rc_{d} [{DRIVER_UNITS.get(d, '1')}]" for d in drivers]
        + [f"z_{d}" for d in drivers]
    )
    rows = []
    for number, entry in result.centroids().items():
        rows.append(
            [
                result.dataset,
                number,
                entry["name"],
                entry["n_boxes"],
                entry["area"] / 1e6,
                entry["mean_lat"],
                *entry["rc"],
                *entry["z"],
            ]
        )
    return header, rows


def detection_metric_rows(result: DetectionResult, scores: Mapping[str, float]) -> list[list[Any]]:
    """Long-format metric rows (dataset, biome, metric, value) of a detection."""
    rows: list[list[Any]] = [
        [result.dataset, "all", "n_biomes", result.n_biomes],
        [result.dataset, "all", "n_boxes_clustered", int(result.labels.size)],
        [
            result.dataset,
            "all",
            "n_boxes_fitted",
            sum(len(r.all_boxes) for r in result.regressions),
        ],
        [result.dataset, "all", "delta_dist", result.thresholds[0]],
        [result.dataset, "all", "delta_var", result.thresholds[1]],
        [result.dataset, "all", "delta_dist_ward_height", result.delta_dist_abs],
    ]
    rows += [[result.dataset, "all", f"n_boxes_dropped_{k}", v] for k, v in result.dropped.items()]
    rows.append([result.dataset, "all", "n_small_biomes_merged", len(result.merged)])
    rows += [[result.dataset, "all", key, value] for key, value in scores.items()]
    total_area = float(np.nansum(result.area))
    for entry in result.centroids().values():
        rows.append([result.dataset, entry["name"], "n_boxes", entry["n_boxes"]])
        rows.append(
            [
                result.dataset,
                entry["name"],
                "area_fraction",
                entry["area"] * len(result.months) / total_area if total_area else np.nan,
            ]
        )
    return rows


def scan_rows(result: DetectionResult) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the threshold scan table."""
    keys = [key for key in result.scan[0] if key not in ("labels",)]
    rows = [[result.dataset, *[row[key] for key in keys]] for row in result.scan]
    return ["dataset", *keys], rows


def _land(fields: DatasetFields, month_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return fields.latitude, fields.longitude, ~fields.ocean_mask(month_index)


def biome_map_figure(
    label_grid: np.ma.MaskedArray,
    box_size: float,
    names: Mapping[int, str],
    fields: DatasetFields,
    month_index: int,
    title: str,
) -> Figure:
    """Map of biome labels on the box lattice with land from the dataset's own mask."""
    fig = plotting.new_figure(10.0, 6.0)
    ax = plotting.map_axes(fig)
    plotting.plot_biome_map(
        ax, label_grid, box_size, names, land=_land(fields, month_index), title=title
    )
    return fig


def dendrogram_figure(result: DetectionResult, title: str) -> Figure:
    """Dendrogram of the Ward linkage with the cut nodes marked and numbered."""
    fig = plotting.new_figure(11.0, 5.5)
    ax = fig.add_subplot(111)
    plotting.plot_dendrogram(ax, result.linkage, result.cut_nodes, result.names, title=title)
    return fig


def rc_bars_figure(result: DetectionResult, title: str) -> Figure:
    """Grouped bars of the mean standardized RCs of every biome."""
    fig = plotting.new_figure(9.0, 5.0)
    ax = fig.add_subplot(111)
    # signature rows follow the sorted biome numbers, as the bars do
    plotting.plot_rc_bars(ax, result.names, result.signature.mean_z, title=title)
    return fig


def scan_figure(result: DetectionResult, title: str) -> Figure:
    """Heat maps of the threshold scan: biome count and the selection scores."""
    settings = result.settings
    quantities = [
        ("n_biomes", "number of biomes", "{:.0f}", "viridis"),
        ("silhouette", "silhouette (higher is better)", "{:.2f}", "magma"),
        ("calinski_harabasz", "Calinski-Harabasz (higher is better)", "{:.0f}", "magma"),
        ("gmm_bic", "Gaussian-mixture BIC (lower is better)", "{:.0f}", "magma_r"),
        ("paper_score", "paper's score (cannot select K)", "{:.0f}", "cividis"),
    ]
    if any(np.isfinite(row.get("stability", np.nan)) for row in result.scan):
        quantities.append(("stability", "bootstrap stability (ARI)", "{:.2f}", "magma"))
    fig = plotting.new_figure(15.0, 8.0)
    axes = fig.subplots(2, 3).ravel()
    for ax, (key, label, fmt, cmap) in zip(axes, quantities, strict=False):
        table = scan_table(result.scan, key, settings.scan_delta_dist, settings.scan_delta_var)
        plotting.plot_scan_heatmap(
            ax,
            table,
            settings.scan_delta_dist,
            settings.scan_delta_var,
            label=label,
            selected=result.thresholds,
            fmt=fmt,
            cmap=cmap,
        )
        if settings.dist_scale == "root":
            ax.set_xlabel("Δdist (fraction of the root height)")
    for ax in axes[len(quantities) :]:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=11)
    return fig


# ---------------------------------------------------------------------------------------------
# Tracking products
# ---------------------------------------------------------------------------------------------
def tracked_cubes(tracked: Any) -> iris.cube.CubeList:
    """Tracked labels, their softmax probability and the OOD flag on the box lattice."""
    common = {"months": tracked.months, "box_size": tracked.box_size}
    return iris.cube.CubeList(
        [
            _lattice_time_cube(
                tracked.labels,
                **common,
                var_name="biome",
                long_name="carbon biome assigned by the tracking network",
                units="1",
                attributes=flag_attributes(tracked.names),
            ),
            _lattice_time_cube(
                tracked.probability,
                **common,
                var_name="biome_probability",
                long_name="softmax probability of the assigned biome",
                units="1",
            ),
            _lattice_time_cube(
                tracked.ood,
                **common,
                var_name="out_of_distribution",
                long_name="box regression coefficients outside the training distribution "
                "(Mahalanobis distance to the nearest biome centroid beyond the training quantile)",
                units="1",
                attributes={
                    "flag_values": np.asarray([0, 1], np.int8),
                    "flag_meanings": "in_distribution out_of_distribution",
                },
            ),
        ]
    )


def native_label_cube(
    fields: DatasetFields,
    labels: np.ma.MaskedArray,
    cell_boxes: np.ndarray,
    names: Mapping[int, str],
    *,
    long_name: str,
    time_indices: Sequence[int] | None = None,
) -> iris.cube.Cube:
    """Biome labels on the native grid (each ocean cell takes its box's label), built lazily.

    Parameters
    ----------
    fields
        The dataset; its SST cube gives the native grid and the time coordinate.
    labels
        (n_times, n_lat_boxes, n_lon_boxes) labels on the box lattice, masked where none.
    cell_boxes
        Box id of every native cell.
    names
        Biome number -> name, for the CF flag attributes.
    long_name
        Long name of the variable.
    time_indices
        Time steps of the dataset that ``labels`` belong to; default all of them.

    Returns
    -------
    iris.cube.Cube
        Lazy: iris saves it one month at a time.
    """
    import dask.array as da

    n_times = labels.shape[0]
    flat = np.ma.filled(labels.reshape(n_times, -1), LABEL_FILL).astype(np.int16)
    ocean = fields.ocean_mask(0) & (cell_boxes >= 0)
    index = np.where(ocean, cell_boxes, 0)
    lazy = da.from_array(flat, chunks=(1, flat.shape[1]))
    native = lazy.map_blocks(
        lambda block: np.where(ocean, block[:, index], LABEL_FILL).astype(np.int16),
        drop_axis=1,
        new_axis=[1, 2],
        chunks=((1,) * n_times, *index.shape),
        dtype=np.int16,
    )
    native = da.ma.masked_equal(native, LABEL_FILL)
    template = fields.cubes["sst"]
    if time_indices is not None:
        template = template[list(time_indices)]
    cube = template.copy(data=native)
    cube.var_name = "biome"
    cube.standard_name = None
    cube.long_name = long_name
    cube.units = "1"
    cube.attributes.clear()
    cube.cell_methods = ()
    cube.attributes.locals.update(flag_attributes(names))
    return cube


def area_rows(tracked: Any) -> tuple[list[str], list[list[Any]]]:
    """Per month and biome: number of boxes, ocean area and fraction of the classified area."""
    numbers = sorted(tracked.names)
    area = tracked.biome_area()
    labels = np.ma.filled(tracked.labels, 0)
    rows = []
    for t, month in enumerate(tracked.months):
        total = area[t].sum()
        for k, number in enumerate(numbers):
            rows.append(
                [
                    tracked.dataset,
                    month,
                    number,
                    tracked.names[number],
                    int((labels[t] == number).sum()),
                    area[t, k] / 1e6,
                    area[t, k] / total if total > 0 else np.nan,
                ]
            )
    header = [
        "dataset",
        "month",
        "biome_number",
        "biome",
        "n_boxes",
        "area_km2",
        "fraction_of_classified_area",
    ]
    return header, rows


def training_figure(history: Mapping[str, Sequence[float]], best_epoch: int, title: str) -> Figure:
    """Loss and accuracy curves of the network training."""
    fig = plotting.new_figure(11.0, 4.5)
    ax_loss, ax_acc = fig.subplots(1, 2)
    plotting.plot_training_curves(ax_loss, ax_acc, history)
    for ax in (ax_loss, ax_acc):
        ax.axvline(best_epoch, color="0.4", ls=":", lw=1)
    ax_loss.text(best_epoch, ax_loss.get_ylim()[1], " weights restored", va="top", fontsize=8)
    fig.suptitle(title, fontsize=11)
    return fig


def confusion_figure(report: Any, names: Mapping[int, str], title: str) -> Figure:
    """Confusion matrix of the held-out test boxes."""
    fig = plotting.new_figure(7.5, 6.5)
    ax = fig.add_subplot(111)
    classes = [names.get(int(k), str(k)) for k in report.classes]
    plotting.plot_confusion_matrix(ax, report.confusion, classes, title=title)
    return fig


def scores_figure(report: Any, names: Mapping[int, str], title: str) -> Figure:
    """Per-biome precision, recall and F1 of the held-out test boxes."""
    fig = plotting.new_figure(9.0, 4.8)
    ax = fig.add_subplot(111)
    classes = [
        f"{names.get(int(k), k)} (n={int(s)})"
        for k, s in zip(report.classes, report.support, strict=True)
    ]
    plotting.plot_scores_bars(
        ax,
        classes,
        {"precision": report.precision, "recall": report.recall, "F1": report.f1},
        title=title,
    )
    return fig


def seasonal_months(months: Sequence[str], preferred_year: str | None = None) -> list[str]:
    """January, April, July and October of one year of the data (the preferred year if full)."""
    years = sorted({month[:4] for month in months})
    candidates = ([preferred_year] if preferred_year else []) + years[::-1]
    for year in candidates:
        chosen = [f"{year}-{m}" for m in ("01", "04", "07", "10")]
        if all(month in months for month in chosen):
            return chosen
    return list(months[:: max(len(months) // 4, 1)][:4])


def tracked_maps_figure(
    tracked: Any, months: Sequence[str], fields: DatasetFields, title: str
) -> Figure:
    """Biome maps of a few months (2 x 2 panels) with a shared legend."""
    fig = plotting.new_figure(13.0, 8.0)
    for i, month in enumerate(months):
        t = tracked.months.index(month)
        ax = plotting.map_axes(fig, (2, 2, i + 1))
        plotting.plot_biome_map(
            ax,
            tracked.labels[t],
            tracked.box_size,
            tracked.names,
            land=_land(fields, t),
            title=month,
            legend=i == len(months) - 1,
        )
    fig.suptitle(title, fontsize=11)
    return fig
