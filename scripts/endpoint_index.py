"""Print docs/endpoints.md: every HTTP path the app serves, with its methods and the module that holds it.

    .venv/bin/python scripts/endpoint_index.py > docs/endpoints.md

tests/unit/test_docs.py fails when the file no longer matches the app.
"""

from __future__ import annotations

from collections import defaultdict

from fastapi.routing import APIRoute

from paygate.app import create_app, served_routes
from paygate.config import Settings

HEADER = """# Where each endpoint lives

Every path the gateway serves besides `/mcp` (`mcp/endpoint.py`), with the module that holds its route;
the route calls the service beside it in the same domain package (`keys/routes/reservations.py` →
`keys/reservations.py`). Generated from the app by `scripts/endpoint_index.py`; a test keeps it current.

| path | methods | module |
| --- | --- | --- |
"""


def render() -> str:
    app, rt = create_app(Settings(state_file=":memory:", server_command="true", oauth={}))  # every optional router on
    try:
        rows: dict[tuple[str, str], set[str]] = defaultdict(set)
        for route in served_routes(app.api):
            if isinstance(route, APIRoute) and route.path not in ("/openapi.json", "/docs", "/redoc"):
                module = route.endpoint.__module__.removeprefix("paygate.").replace(".", "/") + ".py"
                rows[(route.path, module)] |= route.methods
    finally:
        rt.store.close()
    lines = [
        f"| `{path}` | {', '.join(sorted(methods))} | `{module}` |" for (path, module), methods in sorted(rows.items())
    ]
    return HEADER + "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
