"""Write an ESMValCore configuration for local CMIP6 and OBS/OBS6 data and run recipes with it.

ESMValCore (2.15) reads its built-in defaults and then every ``*.yml`` file in
``$ESMVALTOOL_CONFIG_DIR``; :func:`run_recipe` points that variable at a folder of our own, so
that the user's ``~/.config/esmvaltool`` is never read or written.
"""

from __future__ import annotations

import copy
import logging
import os
import subprocess
import sys
from pathlib import Path

import yaml

__all__ = [
    "CMIP6_DIRNAME",
    "CMIP6_FILENAME",
    "OBS_DIRNAME",
    "OBS_FILENAME",
    "OBS_SUBDIRECTORY",
    "latest_run_dir",
    "run_recipe",
    "write_config",
]

logger = logging.getLogger(__name__)

CMIP6_DIRNAME = (
    "{project}/{activity}/{institute}/{dataset}/{exp}/{ensemble}/{mip}/{short_name}/{grid}/"
    "{version}"
)
CMIP6_FILENAME = "{short_name}_{mip}_{dataset}_{exp}_{ensemble}_{grid}*.nc"
#: Layout of data CMORized by ESMValTool (projects OBS6 and OBS), as in ESMValCore's own
#: ``data-local-esmvaltool.yml``: ``<rootpath>/Tier2/<dataset>/OBS6_<dataset>_..._<var>_...nc``.
OBS_DIRNAME = "Tier{tier}/{dataset}"
OBS_FILENAME = "{project}_{dataset}_{type}_{version}_{mip}_{short_name}[_.]*nc"
#: Folder of the observation-based products below the data root (as the sample data write it).
OBS_SUBDIRECTORY = "OBS"


def write_config(
    config_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    max_parallel_tasks: int = 2,
    log_level: str = "info",
    keep_preprocessed: bool = False,
    obs_root: str | os.PathLike | None = None,
    dask: dict | None = None,
) -> Path:
    """Write ``config_dir/config.yml`` for CMIP6 data in ESGF layout under ``data_root``.

    Projects OBS6 and OBS (observations CMORized by ESMValTool) are read from ``obs_root``
    in ESMValTool's layout ``Tier{tier}/{dataset}/`` (where ``carbon-biomes sample-data``
    writes its observation-based products).

    Parameters
    ----------
    config_dir
        Folder to write into (created).
    data_root
        Root of a CMIP6 DRS tree (``CMIP6/<activity>/<institute>/...``).
    output_dir
        Where ESMValCore creates its run folders.
    max_parallel_tasks
        Tasks run at once.
    log_level
        Console log level.
    keep_preprocessed
        Keep ESMValCore's preprocessed copies of the input data (``preproc/``) after the run;
        by default they are removed (the diagnostics' products hold what later stages need).
        They are written uncompressed: ESMValCore chunks a compressed file over many months, and
        the diagnostics, which read one month at a time, would decompress each chunk again for
        every month.
    obs_root
        Root of the OBS6/OBS tree (``Tier2/<dataset>/...``); ``None`` uses
        ``data_root/OBS``.
    dask
        ESMValCore's ``dask`` configuration (``use`` and ``profiles``), e.g.
        ``{"use": "local_cluster", "profiles": {"local_cluster": {"cluster": {"type":
        "distributed.LocalCluster", "n_workers": 2, "threads_per_worker": 1}}}}``; with a
        ``cluster`` or ``scheduler_address`` profile ESMValCore passes the scheduler's address to
        the diagnostic scripts, which then run their per-month work on it
        (:mod:`carbon_biomes.workflow.parallel`). None (default): ESMValCore's own default (the
        threaded scheduler), nothing written.

    Returns
    -------
    Path
        The configuration file.
    """
    config_dir = Path(config_dir).absolute()
    config_dir.mkdir(parents=True, exist_ok=True)
    obs_root = Path(data_root) / OBS_SUBDIRECTORY if obs_root is None else Path(obs_root)
    obs_source = {
        "local": {
            "type": "esmvalcore.io.local.LocalDataSource",
            "rootpath": str(obs_root.absolute()),
            "dirname_template": OBS_DIRNAME,
            "filename_template": OBS_FILENAME,
        }
    }
    config = {
        "output_dir": str(Path(output_dir).absolute()),
        "auxiliary_data_dir": str(config_dir / "auxiliary_data"),
        "search_data": "quick",
        "max_parallel_tasks": max_parallel_tasks,
        "log_level": log_level,
        "output_file_type": "png",
        "remove_preproc_dir": not keep_preprocessed,
        "projects": {
            "CMIP6": {
                "data": {
                    "local": {
                        "type": "esmvalcore.io.local.LocalDataSource",
                        "rootpath": str(Path(data_root).absolute()),
                        "dirname_template": CMIP6_DIRNAME,
                        "filename_template": CMIP6_FILENAME,
                    }
                }
            },
            "OBS6": {"data": obs_source},
            "OBS": {"data": copy.deepcopy(obs_source)},
        },
    }
    if dask is not None:
        config["dask"] = copy.deepcopy(dask)
    path = config_dir / "config.yml"
    with path.open("w", encoding="utf-8") as file:
        file.write("# Written by carbon-biomes; ESMValCore reads every *.yml in this folder.\n")
        yaml.safe_dump(config, file, sort_keys=False)
    return path


def latest_run_dir(output_dir: str | os.PathLike, recipe: str | os.PathLike) -> Path | None:
    """Return the newest run folder of a recipe under ``output_dir`` (``None`` if none)."""
    stem = Path(recipe).stem
    runs = sorted(Path(output_dir).glob(f"{stem}_[0-9]*_[0-9]*"))
    return runs[-1] if runs else None


def run_recipe(
    recipe: str | os.PathLike,
    config_dir: str | os.PathLike,
    *,
    repository: str | os.PathLike,
    extra_args: list[str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``esmvaltool run RECIPE`` from the repository root with our configuration only.

    ESMValCore finds ``config-references.yml``, ``references/`` and ``diag_scripts/`` relative
    to the working directory, so the repository root is the working directory.

    Parameters
    ----------
    recipe
        Recipe path (relative to the repository or absolute).
    config_dir
        Folder with the configuration (see :func:`write_config`).
    repository
        The carbon-biomes checkout.
    extra_args
        Further command-line arguments for ``esmvaltool run``.

    Returns
    -------
    subprocess.CompletedProcess
    """
    esmvaltool = Path(sys.executable).with_name("esmvaltool")
    command = [str(esmvaltool), "run", str(recipe), *(extra_args or [])]
    env = dict(os.environ)
    env["ESMVALTOOL_CONFIG_DIR"] = str(Path(config_dir).absolute())
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logger.info("Running %s in %s", " ".join(command), repository)
    return subprocess.run(command, cwd=repository, env=env, check=False)
