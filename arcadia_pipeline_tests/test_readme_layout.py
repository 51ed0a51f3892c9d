"""The README's Layout and the package tree agree: every module is named, and every module
named exists."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "arcadia_pipeline"


def layout_block() -> str:
    readme = (REPO / "README.md").read_text()
    return readme.split("## Layout", 1)[1].split("```")[1]


def modules() -> list[Path]:
    """The package's modules; the migration versions are covered by `migrations/`."""
    return [
        path.relative_to(PACKAGE)
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" and "versions" not in path.parts
    ]


def test_every_module_is_in_the_layout():
    block = layout_block()
    missing = [
        str(module)
        for module in modules()
        if module.name not in block or any(f"{part}/" not in block for part in module.parts[:-1])
    ]
    assert missing == []


def test_every_module_the_layout_names_exists():
    names = {module.name for module in modules()}
    named = set(re.findall(r"\b(\w+\.py)\b", layout_block()))
    assert named - names == set()
