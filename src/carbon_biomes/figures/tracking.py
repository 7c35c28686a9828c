"""Figures of the tracking stage: training curves, confusion matrix, scores, maps of months."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from carbon_biomes.core.classifier import EvaluationReport
from carbon_biomes.core.monthly_regression import NativeGrid
from carbon_biomes.core.tracking import TrackedBiomes
from carbon_biomes.figures import plotting
from carbon_biomes.figures.detection import land_of

__all__ = [
    "confusion_figure",
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


def tracked_maps_figure(
    tracked: TrackedBiomes, months: Sequence[str], grid: NativeGrid, title: str
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
            land=land_of(grid),
            title=month,
            legend=i == len(months) - 1,
        )
    fig.suptitle(title, fontsize=11)
    return fig
