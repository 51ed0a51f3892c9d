"""The package's structure holds: its layers (pyproject.toml's import-linter contracts, Dagster
above the domain) and Dagster's private API in one adapter module only."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "arcadia_pipeline"
# The one module that may use dagster._…: it adapts the run launcher, and its test fails
# loudly when a Dagster upgrade moves what it relies on (orchestration/test_run_launcher.py).
ADAPTER = PACKAGE / "orchestration" / "run_launcher.py"


def test_the_import_contracts_are_kept():
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "0 broken" in lint.stdout


def private_dagster_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found += [name for name in names if name.split(".")[0].startswith("dagster") and
                  any(part.startswith("_") for part in name.split(".")[1:])]  # fmt: skip
    return found


def test_no_private_dagster_api_outside_the_launcher_adapter():
    offending = {
        str(path.relative_to(REPO)): imports
        for path in PACKAGE.rglob("*.py")
        if path != ADAPTER and (imports := private_dagster_imports(path))
    }
    assert offending == {}
    assert private_dagster_imports(ADAPTER)  # the adapter is where they are
