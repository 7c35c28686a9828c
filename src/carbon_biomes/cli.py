"""Command-line interface ``carbon-biomes``.

Subcommands are registered in :func:`build_parser`; each one adds its own sub-parser and
sets ``handler`` to a function ``handler(args, parser) -> int`` that returns the exit
status. Invalid input ends with ``parser.error`` (exit status 2, message on stderr).

Available subcommands:

``sample-data``
    Write synthetic CMIP6-like ocean carbon output (see :mod:`carbon_biomes.sample_data`).
``report``
    Write the self-contained offline HTML report of an ESMValCore run (see
    :mod:`carbon_biomes.workflow.report`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from carbon_biomes import __version__

__all__ = ["build_parser", "main", "parse_list", "parse_year_range"]

logger = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace, argparse.ArgumentParser], int]


def parse_year_range(text: str) -> tuple[int, int]:
    """Parse a period ``Y0-Y1`` (or a single year ``Y``) into ``(first, last)``.

    Parameters
    ----------
    text
        The period as given on the command line, e.g. ``2000-2009``.

    Returns
    -------
    tuple of int
        First and last year, inclusive.

    Raises
    ------
    ValueError
        With a message naming ``--years`` if the text is malformed or the first year is after
        the last.
    """
    parts = text.strip().split("-")
    if len(parts) == 1:
        parts = [parts[0], parts[0]]
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        msg = f"invalid --years {text!r}: expected FIRST-LAST, e.g. 2000-2009"
        raise ValueError(msg)
    first, last = (int(part) for part in parts)
    if first > last:
        msg = f"invalid --years {text!r}: the first year must not be after the last"
        raise ValueError(msg)
    return first, last


def parse_list(values: str | Sequence[str], option: str, example: str) -> list[str]:
    """Split option values given as ``A,B`` and/or as separate words into a list.

    Parameters
    ----------
    values
        The value(s) as given on the command line, e.g. ``["r1i1p1f1,r2i1p1f1"]``.
    option
        The option name for messages, e.g. ``--ensembles``.
    example
        A valid value for messages, e.g. ``r1i1p1f1,r2i1p1f1``.

    Returns
    -------
    list of str
        The items in order, without duplicates.

    Raises
    ------
    ValueError
        With a message naming ``option`` if an item is empty (e.g. ``a,,b`` or ``a,``).
    """
    words = [values] if isinstance(values, str) else list(values)
    items: list[str] = []
    for word in words:
        parts = [part.strip() for part in word.split(",")]
        if not all(parts):
            msg = f"invalid {option} {word!r}: expected a comma-separated list, e.g. {example}"
            raise ValueError(msg)
        items += parts
    if not items:
        msg = f"invalid {option}: expected a comma-separated list, e.g. {example}"
        raise ValueError(msg)
    return list(dict.fromkeys(items))


# Library messages that name a parameter, and the option that sets it.
_OPTION_MESSAGES = (
    ("invalid years", "invalid --years"),
    ("invalid resolution", "invalid --resolution"),
    ("invalid experiments", "invalid --experiments"),
    ("invalid experiment", "invalid --experiments"),
    ("invalid ensembles", "invalid --ensembles"),
    ("invalid ensemble", "invalid --ensembles"),
)


def _sample_data(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the ``sample-data`` subcommand."""
    from carbon_biomes import sample_data

    years = None
    if args.years is not None:
        try:
            years = parse_year_range(args.years)
        except ValueError as err:
            parser.error(str(err))
    if args.resolution is not None and not args.resolution > 0:
        parser.error(
            f"invalid --resolution {args.resolution:g}: it must be a positive number of degrees"
        )
    if args.seed < 0:
        parser.error(f"invalid --seed {args.seed}: it must be a non-negative integer")
    try:
        experiments = parse_list(args.experiments, "--experiments", "historical,esm-hist")
        ensembles = parse_list(args.ensembles, "--ensembles", "r1i1p1f1,r2i1p1f1")
    except ValueError as err:
        parser.error(str(err))
    start = time.perf_counter()
    try:
        files = sample_data.generate_sample_data(
            args.out,
            models=args.models,
            years=years,
            resolution=args.resolution,
            seed=args.seed,
            ensembles=ensembles,
            experiments=experiments,
            observations=args.observations,
        )
    except ValueError as err:
        message = str(err)
        for library, option in _OPTION_MESSAGES:
            if message.startswith(f"{library} "):
                message = message.replace(library, option, 1)
                break
        parser.error(message)
    elapsed = time.perf_counter() - start
    models = args.models or list(sample_data.DEFAULT_MODELS)
    activities = sorted({sample_data.EXPERIMENTS[name].activity_id for name in experiments})
    size = sum(path.stat().st_size for path in files)
    root = Path(args.out).resolve()
    obs_root = root / sample_data.OBS_DIRECTORY
    products = [
        spec
        for spec in sample_data.OBSERVATIONS.values()
        if any(path.parent == obs_root / f"Tier{spec.tier}" / spec.dataset for path in files)
    ]
    observed = f" and {', '.join(spec.dataset for spec in products)}" if products else ""
    print(
        f"Wrote {len(files)} files ({size / 1e6:.1f} MB) for {', '.join(models)} "
        f"(experiments {', '.join(experiments)}; ensembles {', '.join(ensembles)}){observed} "
        f"under {root} in {elapsed:.1f} s.\n"
        f"ESMValCore: project CMIP6, rootpath {root}, ESGF layout; facets institute "
        f"SYNTH, activity {', '.join(activities)}, exp {', '.join(experiments)}, ensemble "
        f"{', '.join(ensembles)}, grid gn (mip Omon for spco2 tos sos dissicos talkos "
        f"mlotst, SImon for siconc, Ofx for areacello)."
    )
    for spec in products:
        print(
            f"ESMValCore: project {spec.project}, rootpath {obs_root}, dirname "
            f"Tier{{tier}}/{{dataset}}; facets dataset {spec.dataset}, tier {spec.tier}, type "
            f"{spec.obs_type}, version {spec.version}, mip {spec.mip} "
            f"({' '.join(spec.variables)})."
        )
    return 0


def _add_sample_data_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register the ``sample-data`` subcommand."""
    from carbon_biomes.sample_data import (
        DEFAULT_ENSEMBLES,
        DEFAULT_EXPERIMENTS,
        DEFAULT_MODELS,
        EXPERIMENTS,
        FIRST_YEAR,
        LAST_YEAR,
        MAX_RESOLUTION,
        MIN_RESOLUTION,
        MODELS,
        OBSERVATIONS,
    )

    model_lines = "\n".join(
        f"  {spec.source_id}: {spec.grid_type} {spec.resolution:g} deg, years "
        f"{spec.default_years[0]}-{spec.default_years[1]}, calendar {spec.calendar}"
        for spec in MODELS.values()
    )
    observation_lines = "\n".join(
        textwrap.fill(
            f"{spec.dataset}: project {spec.project}, tier {spec.tier}, type {spec.obs_type}, "
            f"version {spec.version}, {spec.mip} {' '.join(spec.variables)}, regular "
            f"{spec.resolution:g} deg (like {spec.imitates.split(' (')[0]})",
            width=79,
            initial_indent="  ",
            subsequent_indent="    ",
        )
        for spec in OBSERVATIONS.values()
    )
    experiment_lines = "\n".join(
        textwrap.fill(
            f"{spec.experiment_id} (activity {spec.activity_id}): {spec.title}",
            width=79,
            initial_indent="  ",
            subsequent_indent="    ",
        )
        for spec in EXPERIMENTS.values()
    )
    parser = subparsers.add_parser(
        "sample-data",
        help="write synthetic CMIP6-like ocean carbon output (demo and test data)",
        description=textwrap.fill(
            "Write SYNTHETIC, CMOR-compliant CMIP6-like monthly ocean carbon output of "
            "fictitious models (spco2, tos, sos, dissicos, talkos, mlotst in Omon; siconc "
            "in SImon; areacello in Ofx) into a CMIP6 DRS tree in ESGF layout: "
            "OUT/CMIP6/<activity>/SYNTH/<model>/<experiment>/<ensemble>/<table>/<var>/gn/"
            "v20260101/ (by default OUT/CMIP6/CMIP/SYNTH/<model>/historical/r1i1p1f1/...). "
            "fCO2 (spco2) is computed with PyCO2SYS from DIC, alkalinity, temperature and "
            "salinity. Every ensemble member and experiment has its own random variability; "
            "the same arguments and seed give bit-identical files. Unless particular "
            "models are requested, two fictitious observation-based products of the same "
            "years are written as well, in the layout of ESMValTool's CMORized observations: "
            "OUT/OBS/Tier2/<dataset>/<project>_<dataset>_<type>_<version>_<mip>_<var>_"
            "YYYYMM-YYYYMM.nc.",
            width=79,
        ),
        epilog=(
            f"models:\n{model_lines}\n\n"
            f"observation-based products (SYNTHETIC):\n{observation_lines}\n\n"
            f"experiments:\n{experiment_lines}\n\n"
            "examples:\n"
            "  carbon-biomes sample-data --out sample_data\n"
            "  carbon-biomes sample-data --out /tmp/models-only --no-observations\n"
            "  carbon-biomes sample-data --out /tmp/tiny --models SYNTH-ESM-A "
            "--years 2000-2000 --resolution 4\n"
            "  carbon-biomes sample-data --out /tmp/members --models SYNTH-ESM-A "
            "--years 2000 --resolution 4 \\\n"
            "      --ensembles r1i1p1f1,r2i1p1f1 --experiments historical,esm-hist"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="root directory of the CMIP6 tree (created if missing; files are replaced)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        metavar="MODEL",
        default=None,
        help=f"models to generate (default: all of {' '.join(DEFAULT_MODELS)})",
    )
    parser.add_argument(
        "--years",
        metavar="Y0-Y1",
        default=None,
        help=(
            f"first and last year, inclusive, within {FIRST_YEAR}-{LAST_YEAR} "
            "(default: each model's own period)"
        ),
    )
    parser.add_argument(
        "--resolution",
        type=float,
        metavar="DEG",
        default=None,
        help=(
            "nominal grid spacing in degrees for every requested model; must divide 180, "
            f"between {MIN_RESOLUTION:g} and {MAX_RESOLUTION:g} (default: each model's own)"
        ),
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="non-negative seed of the random variability (default: 0)",
    )
    parser.add_argument(
        "--ensembles",
        nargs="+",
        metavar="LABEL",
        default=list(DEFAULT_ENSEMBLES),
        help=(
            "ensemble members (CMIP6 variant labels rNiNpNfN), comma-separated or as "
            "separate words, generated for every model and experiment "
            f"(default: {','.join(DEFAULT_ENSEMBLES)})"
        ),
    )
    parser.add_argument(
        "--experiments",
        nargs="+",
        metavar="EXP",
        default=list(DEFAULT_EXPERIMENTS),
        help=(
            f"experiments, comma-separated or as separate words, out of {', '.join(EXPERIMENTS)} "
            f"(default: {','.join(DEFAULT_EXPERIMENTS)})"
        ),
    )
    parser.add_argument(
        "--observations",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=(
            "also write the observation-based products SYNTH-OBS-CARBON and SYNTH-OBS-SST "
            "(grid spacing: --resolution for the carbon product, half of it for the SST "
            "product); --no-observations skips them (default: written unless --models is "
            "given)"
        ),
    )
    parser.set_defaults(handler=_sample_data, subparser=parser)


def _report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the ``report`` subcommand."""
    from carbon_biomes.workflow.report import write_report

    session = Path(args.session_dir)
    if not session.is_dir():
        parser.error(f"invalid SESSION_DIR {str(session)!r}: no such directory")
    if not (session / "run").is_dir():
        parser.error(
            f"invalid SESSION_DIR {str(session)!r}: not an ESMValCore session directory "
            "(it has no run/ folder)"
        )
    if args.output is not None and args.output.is_dir():
        parser.error(f"invalid --output {str(args.output)!r}: it is a directory, give a file")
    path = write_report(session, args.output)
    print(path)
    return 0


def _add_report_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register the ``report`` subcommand."""
    from carbon_biomes.workflow.report import REPORT_NAME

    parser = subparsers.add_parser(
        "report",
        help="write the self-contained offline HTML report of an ESMValCore run",
        description=textwrap.fill(
            "Write one self-contained HTML report of an ESMValCore run of the carbon-biomes "
            "scripts: per stage in pipeline order (regression, detection, tracking, analysis, "
            "comparison) and per dataset, every figure with its caption and every table, "
            "NetCDF and other file linked, the comparison metrics as tables, and the outputs "
            "whose file is missing. Styles are inlined and figures and files are referenced "
            "by relative paths, so the report works offline. Prints the report's path.",
            width=79,
        ),
        epilog=(
            "example:\n"
            "  carbon-biomes report esmvaltool_output/recipe_carbon_biomes_demo_20260101_120000"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "session_dir",
        metavar="SESSION_DIR",
        help="the ESMValCore session (output) directory of the run, with run/, plots/, work/",
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        default=None,
        help=f"the HTML file to write (default: SESSION_DIR/{REPORT_NAME})",
    )
    parser.set_defaults(handler=_report, subparser=parser)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with all subcommands.

    Returns
    -------
    argparse.ArgumentParser
        The top-level parser; its subcommands set ``handler`` and ``subparser``.
    """
    parser = argparse.ArgumentParser(
        prog="carbon-biomes",
        description=(
            "Detect and track marine carbon biomes in Earth System Model output "
            "(Mohanty et al. 2025, Ocean Science 21, 587)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v", "--verbose", action="store_true", help="log debug messages as well"
    )
    verbosity.add_argument(
        "-q", "--quiet", action="store_true", help="log warnings and errors only"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_sample_data_parser(subparsers)
    _add_report_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``carbon-biomes`` command.

    Parameters
    ----------
    argv
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        Exit status (0 on success). Invalid input raises ``SystemExit(2)`` with a message.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler: Handler = args.handler
    return handler(args, args.subparser)


if __name__ == "__main__":
    sys.exit(main())
