"""The runtime dependencies pyproject.toml declares are exactly the packages the gateway (src/paygate but
paygate.client) imports; the `client` extra's are exactly those paygate.client imports beyond them."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import files, packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "src" / "paygate" / "client"
# used by name rather than imported: uvicorn loads the event loop named in cli.py (loop="uvloop")
USED_BY_NAME = {"uvloop"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_distributions(client: bool) -> set[str]:
    """What the gateway imports (`client` False) or what paygate.client imports (True)."""
    to_dist = packages_distributions()
    found: set[str] = set()
    for path in (ROOT / "src" / "paygate").rglob("*.py"):
        if (CLIENT in path.parents) != client:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [f"{node.module}.{a.name}" for a in node.names]
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                if top == "paygate" or top in sys.stdlib_module_names:
                    continue
                found |= {_normalized(d) for d in _holders(name, to_dist.get(top, [top]))}
    return found


def _holders(name: str, dists: list[str]) -> list[str]:
    """The distribution that holds module (or module.attribute) `name`: for a namespace package several
    distributions share (opentelemetry), the one whose files hold the longest prefix of the name."""
    if len(dists) <= 1:
        return dists
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        path = "/".join(parts[:cut])
        holders = [
            d for d in dists if any(str(f).startswith(path + "/") or str(f) == path + ".py" for f in files(d) or [])
        ]
        if holders and len(holders) < len(dists):
            return holders
    return dists


def _names(specs: list[str]) -> set[str]:
    return {_normalized(re.split(r"[<>=!~\[;\s]", spec, maxsplit=1)[0]) for spec in specs}


def test_every_imported_package_is_declared_and_every_declared_one_is_used() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _names(project["dependencies"])
    used = _imported_distributions(client=False) | USED_BY_NAME
    assert declared - used == set(), "declared but never imported"
    assert used - declared == set(), "imported but not declared"


def test_the_client_extra_is_what_paygate_client_imports_beyond_the_gateway() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = _names(project["optional-dependencies"]["client"])
    used = _imported_distributions(client=True) - _names(project["dependencies"])
    assert "mcp" in extra
    assert extra - used == set(), "in the client extra but never imported by paygate.client"
    assert used - extra == set(), "imported by paygate.client but neither a dependency nor in the client extra"
    assert extra & _imported_distributions(client=False) == set(), "the gateway imports the client's extra"
