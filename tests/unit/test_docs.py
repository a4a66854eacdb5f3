"""The docs cover every flag, env var, endpoint and deny reason the code has."""

from __future__ import annotations

import re

import typer.main

from paygate.cli import app as cli_app
from paygate.config import ENV_TO_KEY
from paygate.core.errors import DENY_REASONS
from tests.support import ROOT

DOCS = ROOT / "docs"


def test_every_deny_reason_is_in_the_errors_table() -> None:
    text = (DOCS / "errors.md").read_text()
    for r in DENY_REASONS.values():
        assert f"| `{r.name}` | `{r.code}` | {r.http_status} |" in text, r.name


def test_every_wrap_flag_and_env_var_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    command = typer.main.get_command(cli_app)
    wrap = command.commands["wrap"]  # type: ignore[attr-defined]
    flags = {opt for p in wrap.params for opt in p.opts if opt.startswith("--")} - {"--help"}
    assert flags, "wrap has flags"
    for flag in flags:
        assert f"`{flag}" in text, flag
    for var in ENV_TO_KEY:
        assert var in text, var


def test_every_http_route_is_documented() -> None:
    text = (DOCS / "api.md").read_text()
    routes = {"/mcp", "/keys", "/topup", "/keys/revoke", "/usage", "/status", "/balance", "/health", "/ready",
              "/info", "/pricing", "/.well-known/mcp-payment", "/.well-known/mcp.json", "/metrics", "/robots.txt",
              "/openapi.json", "/docs"}
    for route in routes:
        assert re.search(rf"`(GET |POST )?{re.escape(route)}[`?]", text), route
