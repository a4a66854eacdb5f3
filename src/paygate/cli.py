"""The `paygate-mcp` command: wrap, init, validate, import-state, migrate-store, version, completions, loadtest."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import socket
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from paygate import __version__, logs
from paygate.cli_completions import completions_command
from paygate.cli_init import init_command
from paygate.config import DEFAULT_STATE_FILE, ConfigError, Settings, load_settings, resolve_sources
from paygate.loadtest import loadtest_command
from paygate.mcp.backends.base import BackendError
from paygate.ready_banner import print_ready
from paygate.runtime import Runtime
from paygate.store.state_file import StateFileInUse, check_free

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: the rich table shows every flag as "<bool>" as if it took a value
    help="Pay-per-tool-call gateway for MCP servers.",
)

Opt = typer.Option


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool, Opt("--version", "-v", callback=_print_version, is_eager=True, help="Print the version and exit")
    ] = False,
) -> None:
    """Pay-per-tool-call gateway for MCP servers."""


@app.command()
def wrap(
    server: Annotated[str | None, Opt(help="MCP server command to wrap via stdio (split like a shell)")] = None,
    remote_url: Annotated[str | None, Opt(help="Remote MCP server URL (Streamable HTTP)")] = None,
    host: Annotated[str | None, Opt(help="Interface to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, Opt(help="HTTP port (default 3402; 0 picks a free port)")] = None,
    price: Annotated[int | None, Opt(help="Default credits per tool call (default 1)")] = None,
    rate_limit: Annotated[int | None, Opt(help="Max calls/min per key (default 60, 0 = unlimited)")] = None,
    name: Annotated[str | None, Opt(help="Server display name")] = None,
    shadow: Annotated[bool | None, Opt("--shadow", help="Shadow mode: log without enforcing payment")] = None,
    admin_key: Annotated[str | None, Opt(help="Admin key (default: generated once, kept in the state dir)")] = None,
    tool_price: Annotated[str | None, Opt(help='Per-tool prices, e.g. "search:5,generate:10"')] = None,
    import_key: Annotated[list[str] | None, Opt(help='Import an existing key with credits, "pg_abc:100"')] = None,
    state_file: Annotated[str | None, Opt(help="SQLite state file (default ~/.paygate/paygate.db; :memory:)")] = None,
    refund_on_failure: Annotated[bool | None, Opt("--refund-on-failure", help="Refund failed tool calls")] = None,
    trusted_proxies: Annotated[str | None, Opt(help='Proxies whose X-Forwarded-For is believed: "10.0.0.0/8"')] = None,
    country_header: Annotated[str | None, Opt(help="Header a trusted proxy puts the client's country in")] = None,
    allowed_origins: Annotated[
        str | None, Opt(help='Browser origins allowed on /mcp besides loopback, "https://app.example.com,…" or "*"')
    ] = None,
    webhook_url: Annotated[str | None, Opt(help="POST batched usage and admin events to this URL")] = None,
    webhook_secret: Annotated[str | None, Opt(help="HMAC-SHA256 secret: signs webhooks (X-PayGate-Signature)")] = None,
    webhook_retries: Annotated[
        int | None, Opt(help="Delivery attempts after the first before dead-lettering (default 5)")
    ] = None,
    webhook_allow_private: Annotated[
        bool | None,
        Opt("--webhook-allow-private", help="Allow webhook URLs on loopback, private and link-local addresses"),
    ] = None,
    discovery: Annotated[
        str | None,
        Opt(
            help="Tool discovery: static (default: every tool in tools/list) or "
            "dynamic (3 meta-tools to list, search and call them)"
        ),
    ] = None,
    log_format: Annotated[str | None, Opt(help="Log format: text (default) or json")] = None,
    log_level: Annotated[str | None, Opt(help="Log level: debug, info (default), warning, error")] = None,
    request_timeout: Annotated[
        int | None, Opt(help="Max time to receive a request, in ms (default 30000, 0 = no limit)")
    ] = None,
    headers_timeout: Annotated[
        int | None, Opt(help="Max time to receive request headers, in ms (default 10000)")
    ] = None,
    keepalive_timeout: Annotated[
        int | None, Opt(help="Idle keep-alive connection timeout, in ms (default 65000)")
    ] = None,
    max_requests_per_socket: Annotated[
        int | None, Opt(help="Requests served on one connection before it closes (default 0 = unlimited)")
    ] = None,
    redis_url: Annotated[
        str | None,
        Opt(help="Redis URL (redis://[:password@]host:port/db, rediss://): the store shared by several instances"),
    ] = None,
    redis_prefix: Annotated[
        str | None, Opt(help='Prefix of every Redis key (default "paygate"): several fleets on one Redis')
    ] = None,
    stripe_secret: Annotated[
        str | None,
        Opt(help="Stripe webhook signing secret (whsec_...): enables POST /stripe/webhook (docs/payments.md)"),
    ] = None,
    cors_origin: Annotated[
        str | None, Opt(help='CORS allowed origin(s): "*" (default), "https://app.example.com" or a comma list')
    ] = None,
    header: Annotated[
        list[str] | None,
        Opt(help='Custom response header(s) "Name:value,Name2:value2" (repeatable), on every response'),
    ] = None,
    admin_rate_limit: Annotated[
        int | None, Opt(help="Admin API requests/min per client address (default 120, 0 = unlimited)")
    ] = None,
    plugin: Annotated[
        list[str] | None,
        Opt(help='Load a plugin, "module:attribute" or an installed entry-point name (repeatable; docs/plugins.md)'),
    ] = None,
    config: Annotated[str | None, Opt(help="JSON config file")] = None,
    watch_config: Annotated[
        bool | None, Opt("--watch-config", help="Reload the config file when it changes (as SIGHUP does)")
    ] = None,
    dry_run: Annotated[
        bool, Opt("--dry-run", envvar="PAYGATE_DRY_RUN", help="Discover tools, print the pricing table, exit")
    ] = False,
    json_output: Annotated[bool, Opt("--json", help="Machine-readable output")] = False,
) -> None:
    """Start the payment-gated proxy in front of an MCP server."""
    params = dict(locals())  # every parameter, by name, as Typer passed it
    settings = _settings_or_exit(params)
    logs.configure(settings.log_format, settings.log_level)
    _warn_ignored(params)
    if dry_run:
        raise typer.Exit(asyncio.run(_dry_run(settings, json_output)))
    if not settings.in_memory and not settings.redis_url:  # before the port: a second gateway on this state
        # file is told why it stops
        try:
            check_free(settings.state_file)
        except (StateFileInUse, OSError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
    _serve(settings, json_output)


# wrap's parameter → the config field it sets (unset flags leave the config file's value or the default)
WRAP_FLAGS = {
    **{same: same for same in ("server", "host", "port", "name", "discovery")},
    "remote_url": "remoteUrl",
    "price": "defaultCreditsPerCall",
    "rate_limit": "globalRateLimitPerMin",
    "shadow": "shadowMode",
    "admin_key": "adminKey",
    "tool_price": "toolPrice",
    "import_key": "importKey",
    "state_file": "stateFile",
    "refund_on_failure": "refundOnFailure",
    "trusted_proxies": "trustedProxies",
    "country_header": "countryHeader",
    "allowed_origins": "allowedOrigins",
    "webhook_url": "webhookUrl",
    "webhook_secret": "webhookSecret",
    "webhook_retries": "webhookMaxRetries",
    "webhook_allow_private": "webhookAllowPrivate",
    "log_format": "logFormat",
    "log_level": "logLevel",
    "request_timeout": "requestTimeoutMs",
    "headers_timeout": "headersTimeoutMs",
    "keepalive_timeout": "keepAliveTimeoutMs",
    "max_requests_per_socket": "maxRequestsPerSocket",
    "redis_url": "redisUrl",
    "redis_prefix": "redisPrefix",
    "stripe_secret": "stripeSecret",
    "cors_origin": "corsOrigin",
    "header": "customHeaders",
    "admin_rate_limit": "adminRateLimit",
    "plugin": "plugins",
    "watch_config": "watchConfig",
}


def settings_from_wrap_args(argv: Sequence[str]) -> Settings:
    """The Settings `paygate-mcp wrap ARGV…` would serve with, parsed by the same Click command
    (for the tests' in-process gateway). Raises a usage error, ConfigError or ValidationError."""
    command = typer.main.get_command(app).commands["wrap"]  # type: ignore[attr-defined]
    with command.make_context("wrap", list(argv)) as ctx:
        # as Typer hands them to `wrap`: an unrepeated multiple option is None, a repeated one a list
        params = {
            name: (list(value) or None) if isinstance(value, tuple) else value for name, value in ctx.params.items()
        }
    return settings_from_params(params)


def _flags(params: Mapping[str, Any]) -> dict[str, Any]:
    return {field: params[name] for name, field in WRAP_FLAGS.items() if params.get(name) is not None}


def settings_from_params(params: Mapping[str, Any]) -> Settings:
    """Settings from wrap's parameters (by name): the flags given, over `config`, over the defaults."""
    settings = load_settings(_flags(params), params.get("config"))
    if not settings.has_backend:
        raise ConfigError("no MCP server given: use --server, --remote-url, or a config file with 'servers'")
    return settings


def _settings_or_exit(params: Mapping[str, Any]) -> Settings:
    try:
        return settings_from_params(params)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "config"
            typer.echo(f"error: [{field}] {err['msg'].removeprefix('Value error, ')}", err=True)
        raise typer.Exit(2) from exc


def _warn_ignored(params: Mapping[str, Any]) -> None:
    """One line on stderr for settings accepted and not acted on (later features, unknown keys)."""
    from paygate.validation import start_warning

    line = start_warning(resolve_sources(_flags(params), params.get("config")))
    if line:
        typer.echo(line, err=True)


async def _dry_run(settings: Settings, as_json: bool) -> int:
    from paygate.compose import build_backend, build_pricebook

    backend, _ = build_backend(settings)
    try:
        await backend.start()
    except Exception as exc:
        typer.echo(f"error: backend failed to start: {exc}", err=True)
        return 1
    try:
        prices = build_pricebook(settings)
        rows = [(t["name"], prices.for_tool(t["name"])) for t in backend.tools]
    finally:
        await backend.stop()
    if as_json:
        typer.echo(json.dumps({"tools": [{"name": n, **p.public()} for n, p in rows]}))
        return 0
    typer.echo(f"── DRY RUN ──\nDiscovered {len(rows)} tool(s):")
    width = max([len(n) for n, _ in rows] + [4]) + 2
    typer.echo(f"  {'Tool':<{width}}{'Credits/Call':>14}  Rate Limit")
    for tool, p in rows:
        limit = p.rate_limit_per_min or settings.global_rate_limit_per_min
        typer.echo(f"  {tool:<{width}}{p.credits_per_call:>14}  {f'{limit}/min' if limit else 'unlimited'}")
    typer.echo("Dry run complete — shutting down.")
    return 0


def _serve(settings: Settings, as_json: bool) -> None:
    from paygate.app import create_app
    from paygate.compose.reload import hold_sighup
    from paygate.http.server import build_server

    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        typer.echo(f"error: cannot listen on {settings.host}:{settings.port}: {exc}", err=True)
        raise typer.Exit(1) from exc
    sock.listen(2048)
    port = sock.getsockname()[1]

    def on_ready(rt: Runtime) -> None:
        # Everything built so far (FastAPI, pydantic, the backend's handshake) lives as long as the
        # process: moving it out of the collector's sight keeps full GC passes short (measured: a
        # 44 ms pause, the whole p99 at 64 connections, before; see bench/README.md).
        gc.collect()
        gc.freeze()
        print_ready(rt, port, as_json)

    try:
        asgi, rt = create_app(settings, on_ready=on_ready)
    except Exception as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    server = build_server(settings, _StartupErrors(asgi), rt.metrics)
    # uvicorn drains on SIGTERM/SIGINT, then re-raises the signal under the handlers it found;
    # no-op handlers make a graceful stop exit 0 instead of dying by that signal.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    # SIGHUP reloads the config while serving (compose/reload.py); while starting and stopping it must not
    # end the process (its default). A handler, not SIG_IGN: the stdio server's exec resets it to default.
    signal.signal(signal.SIGHUP, hold_sighup)
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn exits 3 after a failed startup; ours is documented as 1
        if server.started:
            raise
    finally:
        sock.close()
    if not server.started:
        raise typer.Exit(1)


class _StartupErrors:
    """Wraps the app's lifespan so a failed startup (a backend that cannot start) prints one
    `error: ...` line instead of uvicorn's traceback; uvicorn then exits non-zero."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        failed: list[Any] = []

        async def hold_failure(message: Any) -> None:
            if message["type"] == "lifespan.startup.failed":
                failed.append(message)  # reported below, without the traceback it carries
                return
            await send(message)

        try:
            await self.app(scope, receive, hold_failure)
        except Exception as exc:
            if not failed:
                raise
            logging.getLogger("paygate").debug("startup failed", exc_info=exc)
            what = "backend failed to start" if isinstance(exc, BackendError) else "startup failed"
            typer.echo(f"error: {what}: {exc or type(exc).__name__}", err=True)
            await send({"type": "lifespan.startup.failed", "message": ""})


@app.command()
def validate(
    config: Annotated[str, Opt(help="JSON config file to check")],
    json_output: Annotated[bool, Opt("--json", help="Machine-readable output")] = False,
) -> None:
    """Check a config file without starting anything; exit 1 on errors."""
    from paygate.validation import diagnose, format_text, report

    diags = diagnose(config)
    result = report(diags)
    typer.echo(json.dumps(result) if json_output else format_text(diags))
    raise typer.Exit(0 if result["valid"] else 1)


@app.command("import-state")
def import_state(
    file: Annotated[str, typer.Argument(help="paygate-mcp state file (and its -admin/-groups/-templates files)")],
    state_file: Annotated[
        str, Opt(envvar="PAYGATE_STATE_FILE", help="SQLite state file to import into (default ~/.paygate/paygate.db)")
    ] = DEFAULT_STATE_FILE,
    dry_run: Annotated[bool, Opt("--dry-run", help="Report what would be imported; write nothing")] = False,
    json_output: Annotated[bool, Opt("--json", help="Machine-readable output")] = False,
) -> None:
    """Import a paygate-mcp JSON state (keys, groups, templates, admin keys); exit 0 ok, 1 unreadable, 3 partial."""
    from paygate.state_migration import run_import

    raise typer.Exit(run_import(file, state_file, dry_run=dry_run, as_json=json_output, echo=typer.echo))


@app.command("migrate-store")
def migrate_store(
    from_: Annotated[str, Opt("--from", help="Copy from: a SQLite state file, or a redis://, rediss://, unix:// URL")],
    to: Annotated[str, Opt("--to", help="Copy into (must be empty): the other kind of store")],
    redis_prefix: Annotated[
        str, Opt(envvar="PAYGATE_REDIS_PREFIX", help="The Redis side's key prefix (default paygate)")
    ] = "paygate",
    dry_run: Annotated[bool, Opt("--dry-run", help="Read and count both sides; write nothing")] = False,
    json_output: Annotated[bool, Opt("--json", help="Machine-readable output")] = False,
) -> None:
    """Copy a whole store between SQLite and Redis (stop the gateways first); exit 0 copied and verified, 1 not."""
    from paygate.store_migration import run_migrate

    code = run_migrate(from_, to, prefix=redis_prefix, dry_run=dry_run, as_json=json_output, echo=typer.echo)
    raise typer.Exit(code)


@app.command()
def version(json_output: Annotated[bool, Opt("--json", help="Machine-readable output")] = False) -> None:
    """Print the version."""
    typer.echo(json.dumps({"version": __version__}) if json_output else __version__)


app.command("init")(init_command)  # cli_init.py
app.command("completions")(completions_command)  # cli_completions.py
app.command("loadtest")(loadtest_command)  # loadtest.py


def main() -> None:
    app()
