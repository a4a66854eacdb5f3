"""The gateway and paygate.client stay apart: the import contracts name every gateway module."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "paygate"


def _gateway_modules() -> set[str]:
    names = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    names |= {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    return {f"paygate.{n}" for n in names - {"client"}}


def _contract(name: str) -> dict[str, list[str]]:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    found: dict[str, list[str]] = next(c for c in contracts if c["name"] == name)
    return found


def test_every_gateway_module_is_kept_from_importing_the_client_and_the_sdk() -> None:
    contract = _contract("the gateway never imports the client or the MCP SDK")
    assert set(contract["source_modules"]) == _gateway_modules()
    assert {"paygate.client", "mcp", "httpx2"} <= set(contract["forbidden_modules"])


def test_the_client_is_kept_from_importing_every_gateway_module() -> None:
    contract = _contract("the client imports nothing of the gateway")
    assert contract["source_modules"] == ["paygate.client"]
    assert set(contract["forbidden_modules"]) == _gateway_modules()
