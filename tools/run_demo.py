"""Run the demo recipe on the sample data and print where the results are (used by `make demo`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from carbon_biomes.esmvalcore_config import latest_run_dir, run_recipe, write_config

REPOSITORY = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    """Write the configuration, run the recipe, report the run's index.html."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/recipe_carbon_biomes_demo.yml")
    parser.add_argument("--data", type=Path, required=True, help="root of the CMIP6 DRS tree")
    parser.add_argument("--config-dir", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument(
        "--keep-preprocessed",
        action="store_true",
        help="keep ESMValCore's preprocessed copies of the inputs (removed by default)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    if not (args.data / "CMIP6").is_dir():
        print(f"error: no CMIP6 data under {args.data}; run `make sample-data`", file=sys.stderr)
        return 1
    config = write_config(
        args.config_dir, args.data, args.output_dir, keep_preprocessed=args.keep_preprocessed
    )
    print(f"ESMValCore configuration: {config}")
    before = latest_run_dir(args.output_dir, args.recipe)
    result = run_recipe(args.recipe, args.config_dir, repository=REPOSITORY)
    run_dir = latest_run_dir(args.output_dir, args.recipe)
    if result.returncode != 0:
        where = f"; see {run_dir / 'run' / 'main_log.txt'}" if run_dir and run_dir != before else ""
        print(
            f"error: esmvaltool run failed with exit code {result.returncode}{where}",
            file=sys.stderr,
        )
        return result.returncode
    if run_dir is None or run_dir == before or not (run_dir / "index.html").is_file():
        print("error: the run finished but wrote no index.html", file=sys.stderr)
        return 1
    report = run_dir / "carbon_biomes_report.html"
    print()
    print(f"Demo finished. Results (NetCDF in work/, figures in plots/): {run_dir}")
    if report.is_file():
        print("The run's report (works offline, every figure and table by stage and dataset):")
        print(report.resolve())
        print("ESMValCore's own index of the outputs:")
    else:
        print("Open this page in a browser:")
    print((run_dir / "index.html").resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
