"""Figures of the tracking stage: training curves, confusion matrix, scores, maps of months."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from carbon_biomes.core.classifier import EvaluationReport
from carbon_biomes.core.monthly_regression import NativeGrid
from carbon_biomes.core.tracking import TrackedBiomes
from carbon_biomes.figures import plotting
from carbon_biomes.figures.detection import land_of

__all__ = [
    "confusion_figure",
    "flagged_boxes",
    "scores_figure",
    "seasonal_months",
    "tracked_maps_figure",
    "training_figure",
]


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


def confusion_figure(report: EvaluationReport, names: Mapping[int, str], title: str) -> Figure:
    """Confusion matrix of the held-out test boxes."""
    fig = plotting.new_figure(7.5, 6.5)
    ax = fig.add_subplot(111)
    classes = [names.get(int(k), str(k)) for k in report.classes]
    plotting.plot_confusion_matrix(ax, report.confusion, classes, title=title)
    return fig


def scores_figure(report: EvaluationReport, names: Mapping[int, str], title: str) -> Figure:
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


def flagged_boxes(tracked: TrackedBiomes, t: int, low_probability: float = 0.5) -> np.ndarray:
    """Classified boxes of month ``t`` that are out of distribution or of low class probability.

    Parameters
    ----------
    tracked
        The tracked biomes.
    t
        Month index.
    low_probability
        Boxes whose winning class probability is below this are flagged.

    Returns
    -------
    numpy.ndarray
        (n_lat_boxes, n_lon_boxes) booleans: ``ood == 1`` or ``probability < low_probability``,
        False where the box carries no label.
    """
    classified = ~np.ma.getmaskarray(tracked.labels[t])
    ood = np.ma.filled(tracked.ood[t] == 1, False)
    unlikely = np.ma.filled(tracked.probability[t] < low_probability, False)
    return classified & (ood | unlikely)


def tracked_maps_figure(
    tracked: TrackedBiomes,
    months: Sequence[str],
    grid: NativeGrid,
    title: str,
    *,
    low_probability: float = 0.5,
) -> Figure:
    """Biome maps of a few months (2 columns) with a shared legend below.

    Boxes out of the training distribution (``tracked.ood == 1``) or whose class probability is
    below ``low_probability`` are hatched over their biome colour; each panel's title gives the
    hatched share of its classified boxes.

    Parameters
    ----------
    tracked
        The tracked biomes.
    months
        ``YYYY-MM`` of the months to map (e.g. :func:`seasonal_months`).
    grid
        The dataset's native grid (its land is shaded).
    title
        Figure title.
    low_probability
        Class-probability threshold of the hatching.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n_cols = 2 if len(months) > 1 else 1
    n_rows = max(-(-len(months) // n_cols), 1)
    fig = plotting.new_figure(6.5 * n_cols, 3.6 * n_rows + 1.2)
    flagged_label = f"out of training distribution, or class probability < {low_probability:g}"
    land = land_of(grid)
    for i, month in enumerate(months):
        t = tracked.months.index(month)
        flagged = flagged_boxes(tracked, t, low_probability)
        n_classified = int((~np.ma.getmaskarray(tracked.labels[t])).sum())
        share = 100.0 * flagged.sum() / max(n_classified, 1)
        ax = plotting.map_axes(fig, (n_rows, n_cols, i + 1))
        plotting.plot_biome_map(
            ax,
            tracked.labels[t],
            tracked.box_size,
            tracked.names,
            land=land,
            title=f"{month} ({share:.0f} % of classified boxes hatched)",
            legend=False,
            flagged=flagged,
            flagged_label=flagged_label,
        )
    handles = plotting.biome_legend_handles(tracked.names, flagged_label=flagged_label)
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), 4),
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(title, fontsize=11)
    return fig
