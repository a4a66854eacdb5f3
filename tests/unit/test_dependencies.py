"""The runtime dependencies pyproject.toml declares are exactly the packages src/paygate imports."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# used by name rather than imported: uvicorn loads the event loop named in cli.py (loop="uvloop")
USED_BY_NAME = {"uvloop"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_distributions() -> set[str]:
    to_dist = packages_distributions()
    found: set[str] = set()
    for path in (ROOT / "src" / "paygate").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                if top == "paygate" or top in sys.stdlib_module_names:
                    continue
                found |= {_normalized(d) for d in to_dist.get(top, [top])}
    return found


def test_every_imported_package_is_declared_and_every_declared_one_is_used() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_normalized(re.split(r"[<>=!~\[;\s]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}
    used = _imported_distributions() | USED_BY_NAME
    assert declared - used == set(), "declared but never imported"
    assert used - declared == set(), "imported but not declared"
