"""`paygate-mcp init`: a config file from a few questions (or from flags, for scripts).

Every answer has a default; `--yes` takes the defaults and the flags without asking. The file is checked
by the same code as `paygate-mcp validate` before it is written, written whole (a temporary file renamed
into place), never over an existing file without `--force`, and with mode 0600 when it holds a secret.
Secrets the gateway can read from the environment (Stripe's webhook secret) are never written: the
wizard says which variable to set instead.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from paygate.config import DEFAULT_PORT, DEFAULT_STATE_FILE, parse_pairs, split_command
from paygate.core.keys import generate_admin_key

ADMIN_KEY_MODES = ("state", "env", "config")  # generated at first start | PAYGATE_ADMIN_KEY | written here
STORES = ("sqlite", "redis", "memory")

Opt = typer.Option
Ask = Callable[[str, Any], Any]  # (question, default) -> answer, typed like the default
Echo = Callable[[str], None]


@dataclass(slots=True)
class Answers:
    server: str | None = None  # a stdio command, split like a shell would
    remote_url: str | None = None
    name: str = "PayGate MCP Server"
    port: int = DEFAULT_PORT
    price: int = 1
    tool_prices: str = ""  # "search:5,generate:10"
    rate_limit: int = 60
    admin_key: str = "state"
    store: str = "sqlite"
    state_file: str = DEFAULT_STATE_FILE
    redis_url: str = ""
    stripe: bool = False
    oauth: bool = False
    notes: list[str] = field(default_factory=list)  # what to do next, printed at the end


def ask_all(given: Answers, ask: Ask) -> Answers:
    """Ask for what the flags left open (each question's default is the flag's value or ours)."""
    a = given
    if not a.server and not a.remote_url:
        target = str(ask("MCP server: a command to run (stdio) or an http(s) URL", "")).strip()
        if target.startswith(("http://", "https://")):
            a.remote_url = target
        else:
            a.server = target or None
    a.name = str(ask("Server name", a.name))
    a.port = int(ask("Port", a.port))
    a.price = int(ask("Credits per tool call", a.price))
    a.tool_prices = str(ask("Per-tool prices (e.g. search:5,generate:10; empty for none)", a.tool_prices or ""))
    a.rate_limit = int(ask("Calls per minute per key (0 = unlimited)", a.rate_limit))
    a.admin_key = str(ask(f"Admin key: {' / '.join(ADMIN_KEY_MODES)}", a.admin_key))
    a.store = str(ask(f"Store: {' / '.join(STORES)}", a.store))
    if a.store == "sqlite":
        a.state_file = str(ask("State file", a.state_file))
    elif a.store == "redis":
        a.redis_url = str(ask("Redis URL", a.redis_url or "redis://127.0.0.1:6379/0"))
    a.stripe = bool(ask("Sell credits with Stripe (webhook)? [y/N]", a.stripe))
    a.oauth = bool(ask("Run the OAuth 2.1 authorization server? [y/N]", a.oauth))
    return a


def build_config(a: Answers) -> tuple[dict[str, Any], str | None]:
    """The config file's content, and the admin key it holds (None unless `admin_key` is "config").
    Raises ValueError for an answer that cannot be used (said in terms of the question)."""
    if a.admin_key not in ADMIN_KEY_MODES:
        raise ValueError(f"admin key: choose one of {', '.join(ADMIN_KEY_MODES)}")
    if a.store not in STORES:
        raise ValueError(f"store: choose one of {', '.join(STORES)}")
    config: dict[str, Any] = {"name": a.name, "port": a.port}
    if a.remote_url:
        config["remoteUrl"] = a.remote_url
    elif a.server:
        config["serverCommand"], config["serverArgs"] = split_command(a.server)
    else:
        raise ValueError("MCP server: give a command to run or an http(s) URL")
    config["defaultCreditsPerCall"] = a.price
    if a.tool_prices.strip():
        prices = parse_pairs(a.tool_prices, "per-tool prices")
        config["toolPricing"] = {tool: {"creditsPerCall": credits} for tool, credits in prices.items()}
    config["globalRateLimitPerMin"] = a.rate_limit
    if a.store == "sqlite":
        config["stateFile"] = a.state_file
    elif a.store == "redis":
        config["redisUrl"] = a.redis_url
    else:
        config["stateFile"] = ":memory:"
        a.notes.append("The store is in memory: keys and credits are lost when the gateway stops.")
    admin_key = None
    if a.admin_key == "config":
        admin_key = config["adminKey"] = generate_admin_key()
    elif a.admin_key == "env":
        a.notes.append("Set PAYGATE_ADMIN_KEY (16 characters or more) in the gateway's environment.")
    else:
        a.notes.append("The admin key is generated at the first start, printed once and kept in the state directory.")
    if a.stripe:
        a.notes.append("Set PAYGATE_STRIPE_SECRET=whsec_… (Stripe's webhook signing secret): docs/payments.md.")
    if a.oauth:
        config["oauth"] = {}
    return config, admin_key


def write_config(path: Path, config: dict[str, Any], *, force: bool, secret: bool) -> None:
    """Write the whole file or nothing; FileExistsError without `force`."""
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists: pass --force to overwrite it")
    fd, tmp = tempfile.mkstemp(prefix=".paygate-init-", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(config, out, indent=2)
            out.write("\n")
        os.chmod(tmp, 0o600 if secret else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_init(path: Path, given: Answers, *, interactive: bool, force: bool, ask: Ask, echo: Echo) -> int:
    """The whole command; its exit code (0 written, 1 refused: the file exists or the answers do not make a
    valid config; nothing is written then)."""
    from paygate.validation import diagnose  # the same checks as `paygate-mcp validate`

    if path.exists() and not force:
        echo(f"error: {path} exists: pass --force to overwrite it")
        return 1
    answers = ask_all(given, ask) if interactive else given
    try:
        config, admin_key = build_config(answers)
    except ValueError as exc:
        echo(f"error: {exc}")
        return 1
    with tempfile.TemporaryDirectory() as scratch:  # validate exactly the bytes that would be written
        draft = Path(scratch) / "paygate.json"
        draft.write_text(json.dumps(config))
        errors = [d for d in diagnose(str(draft), environ={}) if d.level == "error"]
    if errors:
        for d in errors:
            echo(f"error: [{d.field}] {d.message}")
        return 1
    try:
        write_config(path, config, force=force, secret=admin_key is not None)
    except (FileExistsError, OSError) as exc:
        echo(f"error: {exc}")
        return 1
    echo(f"Wrote {path}.")
    if admin_key is not None:
        echo(f"Admin key (written to {path}, mode 0600; shown only now): {admin_key}")
    for note in answers.notes:
        echo(note)
    echo(f"Start the gateway: paygate-mcp wrap --config {path}")
    return 0


def init_command(
    output: Annotated[str, Opt("--output", "-o", help="Config file to write")] = "paygate.json",
    force: Annotated[bool, Opt("--force", help="Overwrite the file if it exists")] = False,
    yes: Annotated[bool, Opt("--yes", "-y", help="Ask nothing: the flags below and the defaults")] = False,
    server: Annotated[str | None, Opt(help="MCP server command to wrap via stdio")] = None,
    remote_url: Annotated[str | None, Opt(help="Remote MCP server URL (Streamable HTTP)")] = None,
    name: Annotated[str, Opt(help="Server display name")] = "PayGate MCP Server",
    port: Annotated[int, Opt(help="HTTP port")] = 3402,
    price: Annotated[int, Opt(help="Credits per tool call")] = 1,
    tool_price: Annotated[str, Opt(help='Per-tool prices, e.g. "search:5,generate:10"')] = "",
    rate_limit: Annotated[int, Opt(help="Calls per minute per key (0 = unlimited)")] = 60,
    admin_key: Annotated[
        str, Opt(help="state (generated at first start) | env (PAYGATE_ADMIN_KEY) | config")
    ] = "state",
    store: Annotated[str, Opt(help="sqlite | redis | memory")] = "sqlite",
    state_file: Annotated[str, Opt(help="SQLite state file")] = DEFAULT_STATE_FILE,
    redis_url: Annotated[str, Opt(help="Redis URL (with --store redis)")] = "",
    stripe: Annotated[bool, Opt("--stripe", help="Sell credits through Stripe (secret from env)")] = False,
    oauth: Annotated[bool, Opt("--oauth", help="Run the OAuth 2.1 authorization server")] = False,
) -> None:
    """Write a config file from a few questions (or from the flags with --yes); exit 1 if nothing was written."""
    given = Answers(
        server,
        remote_url,
        name,
        port,
        price,
        tool_price,
        rate_limit,
        admin_key,
        store,
        state_file,
        redis_url,
        stripe,
        oauth,
    )

    def ask(question: str, default: Any) -> Any:
        if isinstance(default, bool):
            return typer.confirm(question.removesuffix(" [y/N]"), default=default)
        return typer.prompt(question, default=default, type=type(default))

    raise typer.Exit(run_init(Path(output), given, interactive=not yes, force=force, ask=ask, echo=typer.echo))
