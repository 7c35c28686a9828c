"""Box regression of every month of each dataset, computed once for all later stages.

Per dataset: per-cell outlier filter, least-squares fit of fCO2 on SST, DIC and alkalinity in
every box of the lattice, significance test and box statistics, month by month (streamed: one
month in memory at a time). Writes the monthly-RC product (time x box lattice), the native grid
with the box of every cell, and a long-format metrics table, each with provenance. Detection and
tracking read these products; they never regress again (docs/method.md §7).
Settings: :class:`carbon_biomes.workflow.settings.RegressionScriptSettings`.
"""

from __future__ import annotations

import logging
from typing import Any

from carbon_biomes.core.errors import DiagnosticError
from carbon_biomes.core.monthly_regression import regress_months
from carbon_biomes.workflow import parallel, products, tables
from carbon_biomes.workflow.diagnostic import DatasetFailures, ProvenanceLogger, run_diagnostic
from carbon_biomes.workflow.identity import group_by_dataset
from carbon_biomes.workflow.inputs import load_dataset_fields
from carbon_biomes.workflow.settings import RegressionScriptSettings

logger = logging.getLogger(__name__)


def main(cfg: dict[str, Any]) -> None:
    """Regress every month of every dataset of the recipe."""
    settings = RegressionScriptSettings.from_cfg(cfg)
    regression = settings.regression
    datasets = group_by_dataset(cfg["input_data"].values())
    metric_rows: list[list[Any]] = []
    ancestors: list[str] = []
    failed = DatasetFailures()  # datasets whose input is bad
    with ProvenanceLogger(cfg["run_dir"]) as provenance, parallel.month_pool(cfg) as pool:
        writer = products.ProductWriter(cfg, provenance, "regress_boxes.py")
        for number, (identity, metadata) in enumerate(datasets.items(), start=1):
            logger.info("Dataset %d of %d: %s", number, len(datasets), identity.alias)
            try:
                fields = load_dataset_fields(identity, metadata, carbon=regression.carbon_variables)
                if settings.months == "all":
                    months = list(fields.months)
                else:
                    months = list(settings.months)
                indices = [fields.month_index(month) for month in months]
                grid = fields.native_grid(regression.box_size)
                what = (
                    f"{identity.describe()}, {months[0]} to {months[-1]} ({len(months)} months), "
                    f"{regression.box_size:g}° boxes, {regression.significance_test} at "
                    f"alpha={regression.alpha:g}"
                )
                products.write_native_grid(writer, identity, grid, fields.ancestors, what)
                names = ["fco2", "sst", "dic", "alk"] + (["ice"] if "ice" in fields.cubes else [])
                totals: dict[str, int] = {}
                stream = regress_months(
                    fields.iter_months(names, indices),
                    grid,
                    regression,
                    dataset=identity.alias,
                    n_months=len(months),
                    mapper=pool.mapper("regression", identity.alias, len(months)),
                )
                products.write_monthly_rcs(
                    writer,
                    identity,
                    tables.tally_regressions(stream, totals),
                    months,
                    fields.calendar,
                    regression,
                    with_ice="ice" in fields.cubes,
                    ancestors=fields.ancestors,
                    what=what,
                )
                metric_rows += tables.metric_rows(
                    identity, tables.regression_metrics(totals, len(months))
                )
                ancestors += fields.ancestors
            except DiagnosticError as exc:  # bad input: go on with the other datasets
                failed.record(identity.alias, exc)
                continue
        done = failed.good(identity.alias for identity in datasets)
        if done:
            writer.write(
                products.PRODUCTS["regression_metrics"],
                None,
                metric_rows,
                ancestors,
                f"datasets {', '.join(done)}",
            )
    failed.raise_if_any(len(datasets))


if __name__ == "__main__":
    with run_diagnostic() as config:
        main(config)
