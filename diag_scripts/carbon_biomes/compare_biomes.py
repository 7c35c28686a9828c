"""Compare the carbon biomes of several datasets on one common label set (docs/method.md §8).

Ancestors: the regression, detection, tracking (and analysis) scripts. One classifier labels
the monthly RCs of every dataset, so that one biome number and name means the same in every
dataset: the reference's own (``common_labels: reference``) or one trained on biomes detected
in the pooled, area-weighted reference boxes of all datasets (``common_labels: pooled``). Each
dataset's own biomes are matched to the common ones (novel and absent biomes reported), and
every dataset is compared with the reference in the months they share: agreement, kappa, ARI,
Jaccard and F1 of the label maps on the box lattice, area fractions, centroid distances,
seasonal-cycle RMSE and coverage trends per region, with multi-model mean and spread. Writes
the common labels, tables, a CMEC metric bundle, an agreement map and figures, each with
provenance, and at the end the offline HTML report of the whole run.
Settings: :class:`carbon_biomes.workflow.settings.ComparisonScriptSettings`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from carbon_biomes.core import comparison
from carbon_biomes.core.classifier import BiomeClassifier
from carbon_biomes.core.coverage_statistics import coverage_statistics
from carbon_biomes.core.detection import detect_biomes, pool_reference_boxes
from carbon_biomes.core.errors import DiagnosticError
from carbon_biomes.core.matching import match_biomes
from carbon_biomes.core.regression import box_lattice
from carbon_biomes.core.tracking import TrackedBiomes, track_months
from carbon_biomes.figures import comparison as figures
from carbon_biomes.figures.detection import land_of
from carbon_biomes.figures.tracking import flagged_boxes
from carbon_biomes.workflow import cmec, products
from carbon_biomes.workflow.diagnostic import ProvenanceLogger, ancestor_folders, run_diagnostic
from carbon_biomes.workflow.identity import IDENTITY_COLUMNS, DatasetIdentity
from carbon_biomes.workflow.report import write_report
from carbon_biomes.workflow.settings import ComparisonScriptSettings

logger = logging.getLogger(__name__)
PRODUCTS = products.PRODUCTS


class CommonSet:
    """The common biomes: names, standardization, centroids and the classifier that labels."""

    def __init__(self, names: dict[int, str], mean: np.ndarray, std: np.ndarray,
                 centroids: dict[int, np.ndarray], classifier: BiomeClassifier,
                 description: str) -> None:  # fmt: skip
        self.names = names
        self.mean = mean
        self.std = std
        self.centroids = centroids
        self.classifier = classifier
        self.description = description

    def standardize(self, features: np.ndarray) -> np.ndarray:
        """RCs in the common standardization."""
        return (np.asarray(features, dtype=float) - self.mean) / self.std


def reference_set(identity: DatasetIdentity, detected: products.DetectedBiomes,
                  rcs: products.MonthlyRCs,
                  folders: list[Path]) -> tuple[CommonSet, list[str]]:  # fmt: skip
    """The reference's biomes and classifier as the common set."""
    classifier, stem = products.read_classifier(identity, folders)
    z = (detected.features(rcs) - detected.mean) / detected.std
    common = CommonSet(
        dict(detected.names), detected.mean, detected.std,
        comparison.biome_centroids(z, detected.labels), classifier,
        f"the biomes of the reference {identity.describe()} ({', '.join(detected.months)}) and "
        "its classifier",
    )  # fmt: skip
    # ESMValCore keeps one provenance record per file stem (the .keras one: its records are
    # sorted), so the network file stands for the classifier among the ancestors
    return common, [f"{stem}.keras"]


def pooled_set(settings: ComparisonScriptSettings, writer: products.ProductWriter,
               detected: dict[str, products.DetectedBiomes],
               rcs: dict[str, products.MonthlyRCs], ancestors: list[str]) -> CommonSet:  # fmt: skip
    """Biomes detected on the pooled reference boxes of all datasets, and a network for them."""
    boxes = {alias: pool_reference_boxes(rcs[alias].regressions(detected[alias].months), alias)
             for alias in detected}  # fmt: skip
    sample = comparison.pool_datasets(
        boxes, per_dataset=settings.pooled_boxes_per_dataset, seed=settings.detection.seed
    )
    logger.info(
        "Pooled detection: %d boxes from each of %d datasets (area-weighted draw; available: %s)",
        sample.per_dataset,
        len(sample.aliases),
        ", ".join(f"{a} {n}" for a, n in sample.available.items()),
    )
    result = detect_biomes(sample.boxes, settings.detection, "pooled")
    classifier = BiomeClassifier(settings.network).fit(sample.boxes.features, result.labels)
    report = classifier.test_metrics_
    logger.info("Pooled classifier: held-out accuracy %.3f, macro-F1 %.3f on %d boxes",
                report.accuracy, report.macro_f1, report.n_boxes)  # fmt: skip
    what = (f"pooled reference boxes of {', '.join(sample.aliases)} ({sample.per_dataset} "
            f"area-weighted boxes each), {result.n_biomes} biomes, held-out accuracy "
            f"{report.accuracy:.3f}")  # fmt: skip
    writer.write(PRODUCTS["pooled_biome_classifier"], None, classifier, ancestors, what)
    return CommonSet(
        dict(result.names), result.mean, result.std,
        comparison.biome_centroids(result.z, result.labels), classifier,
        f"biomes detected on the pooled reference boxes of {', '.join(sample.aliases)} "
        f"({sample.per_dataset} area-weighted boxes each)",
    )  # fmt: skip


def own_lattice(detected: products.DetectedBiomes, box_size: float) -> np.ma.MaskedArray:
    """A dataset's own detected biomes of its first reference month on the box lattice."""
    n_lat, n_lon = box_lattice(box_size)
    lattice = np.ma.masked_all(n_lat * n_lon, dtype=np.int16)
    first = detected.month_of_box == 0
    lattice[detected.box_id[first]] = detected.labels[first]
    return lattice.reshape(n_lat, n_lon)


def box_area_map(tracked: TrackedBiomes) -> np.ndarray:
    """(n_lat, n_lon) ocean area of every box that is ever classified (m2, 0 elsewhere)."""
    return np.ma.filled(tracked.box_area, 0.0).max(axis=0)


def month_subset(tracked: TrackedBiomes, months: tuple[str, ...]) -> np.ma.MaskedArray:
    """The labels of some months."""
    index = [tracked.months.index(month) for month in months]
    return tracked.labels[index]


def matching_rows(identity: DatasetIdentity, match: Any, own_names: dict[int, str],
                  common_names: dict[int, str]) -> list[list[Any]]:  # fmt: skip
    """Rows of the matching table for one dataset."""
    own = sorted(own_names)
    common = sorted(common_names)
    base = list(identity.table_columns().values())
    rows = [[*base, k, own_names[k], c, common_names[c], "matched",
             round(float(match.cost[own.index(k), common.index(c)]), 6)]
            for k, c in sorted(match.pairs.items())]  # fmt: skip
    rows += [[*base, k, own_names[k], "", "", "novel", ""] for k in match.novel]
    rows += [[*base, "", "", c, common_names[c], "absent", ""] for c in match.absent]
    return rows


def dataset_centroids(common: CommonSet, tracked: TrackedBiomes,
                      detected: products.DetectedBiomes,
                      rcs: products.MonthlyRCs) -> tuple[dict[int, np.ndarray], dict[int, int]]:
    """A dataset's centroids of the common biomes in its reference month(s) and box counts."""
    z_parts, label_parts = [], []
    for reg in rcs.regressions(detected.months):
        kept = reg.kept
        t = tracked.months.index(reg.month)
        labels = np.ma.filled(tracked.labels[t].reshape(-1)[kept.box_id], -1)
        z_parts.append(common.standardize(kept.slopes))
        label_parts.append(labels)
    z = np.concatenate(z_parts)
    labels = np.concatenate(label_parts)
    valid = labels > 0
    centroids = comparison.biome_centroids(z[valid], labels[valid])
    counts = {int(k): int((labels == k).sum()) for k in centroids}
    return centroids, counts


def metric_table(records: dict[str, list[dict[str, Any]]],
                 identities: dict[str, DatasetIdentity]) -> list[list[Any]]:  # fmt: skip
    """Long-format rows of every dataset's records (summary rows last)."""
    rows = []
    for alias, items in records.items():
        identity = identities.get(alias)
        base = (list(identity.table_columns().values()) if identity
                else [alias] + [""] * (len(IDENTITY_COLUMNS) - 1))  # fmt: skip
        rows += [[*base, r["region"], r["biome"], r["metric"], r["value"], r["units"]]
                 for r in items]  # fmt: skip
    return rows


def main(cfg: dict[str, Any]) -> None:  # noqa: C901 - one pass over the comparison steps
    """Label every dataset with the common biomes and compare them with the reference."""
    settings = ComparisonScriptSettings.from_cfg(cfg)
    folders = ancestor_folders(cfg)
    rcs_files = products.discover_products(PRODUCTS["monthly_rcs"], folders)
    identities = {identity.alias: identity for identity in rcs_files}
    aliases = sorted(identities)
    reference = settings.reference
    if reference is not None and reference not in identities:
        raise DiagnosticError(
            f"the reference {reference!r} is not among the datasets of the comparison "
            f"({', '.join(aliases)}); set 'reference' to one of their aliases"
        )
    if len(aliases) < 2:
        raise DiagnosticError(f"a comparison needs at least two datasets, got {aliases}")
    models = [alias for alias in aliases if alias != reference]
    rcs = {alias: products.read_monthly_rcs(rcs_files[identities[alias]]) for alias in aliases}
    biomes_files = {alias: products.find_product(PRODUCTS["biomes"], identities[alias], folders)
                    for alias in aliases}  # fmt: skip
    detected = {alias: products.read_detected_biomes(path) for alias, path in biomes_files.items()}
    sizes = {alias: rcs[alias].settings.box_size for alias in aliases}
    if len(set(sizes.values())) > 1:
        raise DiagnosticError(
            "the datasets were regressed on different box lattices ("
            + ", ".join(f"{a}: {s:g}°" for a, s in sizes.items())
            + "); use one box_size for all datasets of a comparison"
        )
    box_size = sizes[aliases[0]]
    grids = {alias: products.read_native_grid(
        products.find_product(PRODUCTS["native_grid"], identities[alias], folders))[1]
        for alias in aliases}  # fmt: skip
    inputs = [str(rcs_files[identities[a]]) for a in aliases]
    inputs += [str(path) for path in biomes_files.values()]

    with ProvenanceLogger(cfg["run_dir"]) as provenance:
        writer = products.ProductWriter(cfg, provenance, "compare_biomes.py")
        # 1. the common set
        if settings.common_labels == "reference":
            common, classifier_files = reference_set(
                identities[reference], detected[reference], rcs[reference], folders
            )
            inputs += classifier_files
        else:
            common = pooled_set(settings, writer, detected, rcs, inputs)
        names = common.names
        logger.info("Common biomes (%s): %s", common.description,
                    ", ".join(f"{k}={v}" for k, v in names.items()))  # fmt: skip
        setting_text = (f"common labels: {settings.common_labels} ({common.description}); "
                        f"reference: {reference or 'none'}; {box_size:g}° boxes")  # fmt: skip

        # 2. every dataset labelled by the common classifier
        tracked: dict[str, TrackedBiomes] = {}
        for number, alias in enumerate(aliases, start=1):
            logger.info("Common labels, dataset %d of %d: %s", number, len(aliases), alias)
            tracked[alias] = track_months(
                rcs[alias].iter_months(), common.classifier, names, box_size,
                dataset=alias, n_months=len(rcs[alias].months),
            )  # fmt: skip
            products.write_tracked_biomes(
                writer, identities[alias], tracked[alias], rcs[alias].calendar,
                {"common_labels": settings.common_labels, "reference_alias": reference or "",
                 "monthly_rcs_file": rcs[alias].path.name},
                inputs, f"{identities[alias].describe()}, {setting_text}",
                product=PRODUCTS["common_biomes"],
            )  # fmt: skip

        # 3. own biomes matched to the common ones; centroids in the common standardization
        records: dict[str, list[dict[str, Any]]] = {alias: [] for alias in aliases}
        matching: list[list[Any]] = []
        centroid_rows: list[list[Any]] = []
        common_id = (identities[reference].table_columns() if settings.common_labels ==
                     "reference" else {"dataset": "pooled", "model": "", "ensemble": "",
                                       "exp": ""})  # fmt: skip
        for k in sorted(common.centroids):
            centroid_rows.append([*common_id.values(), k, names[k], "",
                                  *np.round(common.centroids[k], 6)])  # fmt: skip
        for alias in aliases:
            det = detected[alias]
            own_z = common.standardize(det.features(rcs[alias]))
            own_centroids = comparison.biome_centroids(own_z, det.labels)
            t = tracked[alias].months.index(det.months[0])
            match = match_biomes(
                own_centroids, common.centroids, own_lattice(det, box_size),
                tracked[alias].labels[t], box_area_map(tracked[alias]),
                overlap_weight=settings.overlap_weight, max_cost=settings.max_match_cost,
            )  # fmt: skip
            matching += matching_rows(identities[alias], match, det.names, names)
            records[alias] += [
                comparison.metric_record("Global", "", "novel_biomes", len(match.novel), "1"),
                comparison.metric_record("Global", "", "absent_biomes", len(match.absent), "1"),
            ]
            logger.info("%s: own biomes matched %s; novel %s; absent %s", alias,
                        ", ".join(f"{det.names[a]}->{names[b]}" for a, b in match.pairs.items()),
                        [det.names[k] for k in match.novel] or "none",
                        [names[k] for k in match.absent] or "none")  # fmt: skip
            centroids, counts = dataset_centroids(common, tracked[alias], det, rcs[alias])
            for k in sorted(centroids):
                centroid_rows.append([*identities[alias].table_columns().values(), k, names[k],
                                      counts[k], *np.round(centroids[k], 6)])  # fmt: skip
            if alias != reference:
                records[alias] += comparison.centroid_distances(centroids, common.centroids, names)

        # 4. coverage, seasonal cycles, trends and map agreement against the reference
        numbers = sorted(names)
        stats: dict[str, tuple[Any, Any]] = {}
        ocean_share: dict[str, dict[int, float]] = {}
        unclassified: dict[str, float] = {}
        pairs = []
        for alias in aliases:
            months = (tuple(tracked[alias].months) if reference is None or alias == reference
                      else comparison.shared_months(tracked[alias].months,
                                                    tracked[reference].months))  # fmt: skip
            if not months:
                logger.warning("%s shares no month with the reference %s: no comparison metrics",
                               alias, reference)  # fmt: skip
                continue
            area = box_area_map(tracked[alias])
            masks = comparison.lattice_region_masks(settings.regions, box_size, area > 0)
            table = comparison.lattice_coverage(month_subset(tracked[alias], months), area,
                                                masks, numbers, months)  # fmt: skip
            stats[alias] = (table, coverage_statistics(table, settings.trends, dataset=alias))
            g = table.region_index("Global") if "Global" in table.regions else 0
            share = 100.0 * table.biome_area[g] / table.ocean_area[g]
            ocean_share[alias] = dict(zip(numbers, share.mean(axis=0).tolist(), strict=True))
            unclassified[alias] = float(np.mean(100.0 - share.sum(axis=1)))
            ref_stats = None
            if reference is not None and alias != reference:
                ref_area = box_area_map(tracked[reference])
                ref_masks = comparison.lattice_region_masks(settings.regions, box_size,
                                                            ref_area > 0)  # fmt: skip
                ref_table = comparison.lattice_coverage(
                    month_subset(tracked[reference], months), ref_area, ref_masks, numbers, months
                )
                ref_stats = (ref_table, coverage_statistics(ref_table, settings.trends,
                                                            dataset=reference))  # fmt: skip
                model_labels = month_subset(tracked[alias], months)
                ref_labels = month_subset(tracked[reference], months)
                records[alias] += comparison.map_comparison(model_labels, ref_labels, ref_area,
                                                            ref_masks, names)  # fmt: skip
                pairs.append((model_labels, ref_labels))
            records[alias] += comparison.coverage_comparison(
                table, stats[alias][1], ref_stats, names, alpha=settings.trends.alpha
            )
        summary = comparison.multi_model_rows(records, models)
        all_records = {**records, **summary}

        what = f"datasets {', '.join(aliases)}; {setting_text}"
        writer.write(PRODUCTS["common_biome_centroids"], None, centroid_rows, inputs, what)
        writer.write(PRODUCTS["comparison_matching"], None, matching, inputs, what)
        rows = metric_table(all_records, identities)
        writer.write(PRODUCTS["comparison_metrics"], None, rows, inputs, what)
        bundle_rows = [dict(zip((*IDENTITY_COLUMNS, "region", "biome", "metric", "value",
                                 "units"), row, strict=True)) for row in rows]  # fmt: skip
        writer.write(PRODUCTS["comparison_cmec"], None, cmec.metric_bundle(
            bundle_rows, provenance={"recipe": str(cfg.get("recipe", "")), "datasets": aliases,
                                     "reference": reference or "", "common_labels":
                                     settings.common_labels}), inputs, what)  # fmt: skip

        # 5. figures
        map_month = (settings.map_months[0] if settings.map_months
                     else detected[reference or aliases[0]].months[0])  # fmt: skip
        shown = [alias for alias in ([reference] if reference else []) + models
                 if map_month in tracked[alias].months]  # fmt: skip
        missing = sorted(set(aliases) - set(shown))
        if missing:
            logger.warning("Map month %s is not in the data of %s: left out of the maps",
                           map_month, ", ".join(missing))  # fmt: skip
        figure_list: list[tuple[str, Any, dict[str, str]]] = []
        if shown:
            maps = {alias: tracked[alias].labels[tracked[alias].months.index(map_month)]
                    for alias in shown}  # fmt: skip
            flagged = {alias: flagged_boxes(tracked[alias], tracked[alias].months.index(map_month))
                       for alias in shown}  # fmt: skip
            figure_list.append(("comparison_maps", figures.comparison_maps_figure(
                maps, box_size, names, f"Common carbon biomes, {map_month}",
                reference=reference, land={a: land_of(grids[a]) for a in shown},
                flagged=flagged), {}))  # fmt: skip
        order = [a for a in ([reference] if reference else []) + models if a in ocean_share]
        bars = figures.comparison_coverage_bars_figure(
            {a: ocean_share[a] for a in order}, names,
            "Share of the global ocean of every common biome (mean over the compared months)",
            reference=reference, unclassified={a: unclassified[a] for a in order},
        )  # fmt: skip
        figure_list.append(("comparison_coverage_bars", bars, {}))
        for r, region in enumerate(settings.regions):
            cycles = {a: stats[a][1].seasonal_mean[r] for a in order}
            ref_std = stats[reference][1].seasonal_std[r] if reference in stats else None
            spaghetti = figures.seasonal_cycle_spaghetti_figure(
                cycles, names, region.name,
                f"Seasonal cycle of the common biomes' coverage, {region.name}",
                reference=reference, reference_std=ref_std,
            )  # fmt: skip
            figure_list.append(("comparison_seasonal_cycle", spaghetti, {"region": region.name}))
        if reference is not None and models:
            compared = [m for m in models if m in stats]
            values, labels, better = comparison.portrait_matrix(records, compared)
            figure_list.append(("comparison_portrait", figures.portrait_figure(
                values, compared, labels,
                f"Comparison with {reference} (global ocean, shared months)",
                better=better), {}))  # fmt: skip
            if pairs:
                fraction, count = comparison.agreement_fraction(pairs)
                products.write_agreement_map(
                    writer, fraction, count, box_size, identities[reference],
                    [identities[m] for m in compared], inputs, what,
                )  # fmt: skip
                figure_list.append(("comparison_agreement_map", figures.agreement_map_figure(
                    fraction, box_size, f"Agreement of {len(compared)} models with {reference} "
                    "(label equal in at least half of the shared months)", n_models=len(compared),
                    land=land_of(grids[reference])), {}))  # fmt: skip
        for name, figure, fields in figure_list:
            writer.write(PRODUCTS[name], None, figure, inputs, what, **fields)

    if settings.report:
        session = Path(cfg["run_dir"]).parents[2]
        logger.info("Wrote the report %s", write_report(session))


if __name__ == "__main__":
    with run_diagnostic() as config:
        main(config)
