"""The package's layering (``[tool.importlinter]`` in pyproject.toml) holds."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def _lint_imports(*args: str, cwd: Path = REPOSITORY) -> subprocess.CompletedProcess:
    executable = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert executable, "import-linter is not installed (pip install -e '.[test]')"
    return subprocess.run([executable, "--no-cache", *args], cwd=cwd, capture_output=True,
                          text=True, check=False)  # fmt: skip


def test_import_contracts_are_kept():
    result = _lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def test_a_core_module_importing_iris_breaks_the_contract(tmp_path):
    """The contracts can fail: a copy of the package whose core imports iris is refused."""
    shutil.copytree(REPOSITORY / "src" / "carbon_biomes", tmp_path / "carbon_biomes")
    shutil.copy(REPOSITORY / "pyproject.toml", tmp_path / "pyproject.toml")
    bad = tmp_path / "carbon_biomes" / "core" / "bad.py"
    bad.write_text("import iris\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, '.'); "
         "from importlinter.cli import lint_imports_command; lint_imports_command()",
         "--no-cache"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "carbon_biomes.core.bad -> iris" in result.stdout
