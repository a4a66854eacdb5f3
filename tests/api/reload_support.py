"""A gateway started from a config file that the test rewrites, and POST /config/reload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_SERVER, PYTHON

BASE: dict[str, Any] = {"serverCommand": PYTHON, "serverArgs": [ECHO_SERVER], "globalRateLimitPerMin": 0}


class ConfigFile:
    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        self.path = path
        self.config = dict(config)
        self.write()

    def write(self) -> None:
        self.path.write_text(json.dumps(self.config))

    def update(self, **changes: Any) -> None:
        self.config.update(changes)
        self.write()


@contextmanager
def reloadable_gateway(
    tmp_path: Path, config: dict[str, Any], *args: str, **kwargs: Any
) -> Iterator[tuple[InProcessGateway, ConfigFile]]:
    file = ConfigFile(tmp_path / "paygate.json", {**BASE, **config})
    with running_inprocess_gateway("--config", str(file.path), *args, **kwargs) as gw:
        yield gw, file


def reload(gw: InProcessGateway, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return gw.client.post("/config/reload", json=body, headers=gw.admin() if headers is None else headers)


def reload_ok(gw: InProcessGateway, body: Any = None) -> dict[str, Any]:
    resp = reload(gw, body)
    assert resp.status_code == 200, resp.text
    answer = dict(resp.json())
    assert answer["ok"] is True and set(answer) == {"ok", "changed", "skipped", "warnings", "message"}
    return answer


def charged_by(gw: InProcessGateway, key: str, tool: str = "echo", arguments: dict[str, Any] | None = None) -> int:
    """Credits one successful call took from `key`."""
    before = gw.balance(key)
    reply = gw.call_tool(tool, arguments if arguments is not None else {"text": "x"}, key)
    assert "result" in reply, reply
    return before - gw.balance(key)
