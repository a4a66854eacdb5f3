"""`paygate-mcp init`: the file it writes is one `validate` accepts, it never overwrites without --force,
it refuses answers that make no config (writing nothing), and a secret it writes is readable by the owner
only. Run in-process with Typer's runner; the e2e test starts a gateway on the written file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paygate.cli import app
from paygate.validation import diagnose

runner = CliRunner()


def _init(tmp_path: Path, *args: str, answers: str | None = None) -> tuple[int, str, Path]:
    out = tmp_path / "paygate.json"
    argv = ["init", "--output", str(out), *args]
    result = runner.invoke(app, argv if answers is not None else [*argv, "--yes"], input=answers)
    return result.exit_code, result.output, out


def test_the_flags_alone_write_a_config_validate_accepts(tmp_path: Path) -> None:
    code, output, out = _init(
        tmp_path, "--server", "python -m my_server --fast", "--price", "3", "--tool-price", "search:5"
    )
    assert code == 0, output
    config = json.loads(out.read_text())
    assert config["serverCommand"] == "python" and config["serverArgs"] == ["-m", "my_server", "--fast"]
    assert config["defaultCreditsPerCall"] == 3 and config["toolPricing"] == {"search": {"creditsPerCall": 5}}
    assert "adminKey" not in config  # the default: generated at first start, kept in the state directory
    assert [d for d in diagnose(str(out), environ={}) if d.level == "error"] == []
    assert f"paygate-mcp wrap --config {out}" in output


def test_the_questions_are_asked_when_not_told_yes(tmp_path: Path) -> None:
    answers = "\n".join(
        [
            "https://mcp.example.com/mcp",  # the server: a URL, so remote
            "My tools",  # name
            "4000",  # port
            "2",  # price
            "",  # per-tool prices: none
            "0",  # rate limit: unlimited
            "env",  # admin key from PAYGATE_ADMIN_KEY
            "memory",  # store
            "y",  # stripe
            "n",  # oauth
        ]
    )
    code, output, out = _init(tmp_path, answers=answers + "\n")
    assert code == 0, output
    config = json.loads(out.read_text())
    assert config["remoteUrl"] == "https://mcp.example.com/mcp" and "serverCommand" not in config
    assert (config["name"], config["port"], config["defaultCreditsPerCall"]) == ("My tools", 4000, 2)
    assert config["globalRateLimitPerMin"] == 0 and config["stateFile"] == ":memory:"
    assert "PAYGATE_ADMIN_KEY" in output and "PAYGATE_STRIPE_SECRET" in output
    assert "whsec" not in out.read_text()  # secrets from the environment are never written


def test_an_existing_file_is_kept_without_force_and_replaced_with_it(tmp_path: Path) -> None:
    out = tmp_path / "paygate.json"
    out.write_text('{"mine": true}')
    code, output, _ = _init(tmp_path, "--server", "x")
    assert code == 1 and "--force" in output
    assert out.read_text() == '{"mine": true}'
    code, output, _ = _init(tmp_path, "--server", "x", "--force")
    assert code == 0, output
    assert json.loads(out.read_text())["serverCommand"] == "x"


def test_an_admin_key_written_to_the_file_is_shown_once_and_owner_only(tmp_path: Path) -> None:
    code, output, out = _init(tmp_path, "--server", "x", "--admin-key", "config")
    assert code == 0, output
    key = json.loads(out.read_text())["adminKey"]
    assert len(key) >= 32 and key in output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "args,says",
    [
        ((), "MCP server"),  # no backend
        (("--server", "x", "--store", "postgres"), "store"),
        (("--server", "x", "--admin-key", "paper"), "admin key"),
        (("--server", "x", "--tool-price", "search"), "per-tool prices"),
        (("--server", "x", "--port", "70000"), "port"),  # refused by the same checks as `validate`
        (("--server", "x", "--store", "redis", "--redis-url", "http://not-redis"), "redisUrl"),
    ],
)
def test_answers_that_make_no_config_write_nothing(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    code, output, out = _init(tmp_path, *args)
    assert code == 1
    assert says in output
    assert not out.exists() and list(tmp_path.iterdir()) == []  # not even a temporary file left behind
