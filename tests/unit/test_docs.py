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


def served_routes() -> set[tuple[str, str]]:
    """(METHOD, path) for every route the app serves, read from the app itself."""
    from paygate.app import create_app, served_routes
    from paygate.config import Settings

    app, rt = create_app(Settings(state_file=":memory:", server_command="true", oauth={}))  # never started; OAuth on
    try:
        out = {("POST", "/mcp")}
        for route in served_routes(app.api):
            for method in route.methods or ():
                if method != "HEAD":
                    out.add((method, route.path))
        return out
    finally:
        rt.store.close()


def test_every_http_route_is_documented() -> None:
    """Each route appears in some page of docs/ as `METHOD /path` (or `/path` for the public GETs)."""
    text = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    missing = []
    for method, route in sorted(served_routes()):
        if route in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"):
            continue
        if not re.search(rf"`({method} )?{re.escape(route)}[`?]", text):
            missing.append(f"{method} {route}")
    assert not missing, f"undocumented routes: {missing}"


def test_every_route_and_dependency_runs_on_the_event_loop() -> None:
    """FastAPI runs plain `def` routes in a thread pool; the store is shared with the hot path's group
    commit and must only be used from the event loop, so every route and dependency is `async def`."""
    import inspect

    from fastapi.routing import APIRoute

    from paygate.app import create_app, served_routes
    from paygate.config import Settings

    app, rt = create_app(Settings(state_file=":memory:", server_command="true", oauth={}))  # every optional router on
    try:
        threaded = []
        routes = served_routes(app.api)
        assert len(routes) > 50, "the walk finds the included routers' routes"
        for route in routes:
            if not isinstance(route, APIRoute) or route.path in ("/openapi.json", "/docs", "/redoc"):
                continue
            calls = [route.endpoint, *(d.call for d in route.dependant.dependencies)]
            # a callable object (the admin guard) runs on the loop when its __call__ is async, as FastAPI decides
            threaded += [
                f"{route.path}: {c!r}"
                for c in calls
                if c and not inspect.iscoroutinefunction(c if inspect.isroutine(c) else type(c).__call__)
            ]
        assert not threaded, f"sync routes or dependencies: {threaded}"
    finally:
        rt.store.close()


def test_every_event_type_the_code_publishes_is_in_the_catalog_and_documented() -> None:
    """Literal types in publish()/emit() calls, plus the ones built from parts (groups and teams share
    one membership module; templates and plans name created/updated)."""
    from paygate.events.types import EVENT_TYPES

    source = "\n".join(p.read_text() for p in (ROOT / "src" / "paygate").rglob("*.py"))
    published = set(re.findall(r"""(?:publish|emit)\(\s*"([a-z_]+\.[a-z_]+)\"""", source))
    # KeyService.update_policy(record, actor, "<type>", …) publishes the type it is given
    published |= set(re.findall(r"""update_policy\([^"()]*"([a-z_]+\.[a-z_]+)\"""", source))
    built = {
        f"{kind}.{action}"
        for kind in ("group", "team")
        for action in ("created", "updated", "deleted", "key_assigned", "key_removed")
    }
    built |= {"template.created", "template.updated", "plan.created", "plan.updated"}
    assert len(published) > 50
    assert published | built <= set(EVENT_TYPES), sorted((published | built) - set(EVENT_TYPES))
    text = (DOCS / "events.md").read_text()
    assert not [t for t in EVENT_TYPES if f"| `{t}` |" not in text]


def test_the_endpoint_index_lists_every_served_path_with_the_module_that_holds_it() -> None:
    """docs/endpoints.md is how a reader finds an endpoint's code from its path: it must match the app."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("endpoint_index", ROOT / "scripts" / "endpoint_index.py")
    assert spec is not None and spec.loader is not None
    index = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(index)
    expected = index.render()
    assert "| `/keys/reserve` | GET, POST | `keys/routes/reservations.py` |" in expected
    assert (ROOT / "docs" / "endpoints.md").read_text() == expected, (
        "docs/endpoints.md is stale: .venv/bin/python scripts/endpoint_index.py > docs/endpoints.md"
    )


def test_no_module_reaches_into_another_modules_private_members() -> None:
    """`x._name` on anything but self/cls only where this module defines `_name` (classes of one module
    may cooperate); a seam between modules is a public method (the review found 13 such reaches)."""
    import ast

    reaches = []
    for path in (ROOT / "src" / "paygate").rglob("*.py"):
        tree = ast.parse(path.read_text())
        own = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        own |= {
            t.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Assign | ast.AnnAssign)
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
            if isinstance(t, ast.Attribute)
        }
        own |= {
            t.id for n in ast.walk(tree) if isinstance(n, ast.AnnAssign) for t in [n.target] if isinstance(t, ast.Name)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and node.attr not in own
                and node.attr != "_replace"
            ):  # NamedTuple's public API
                reaches.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert reaches == []
