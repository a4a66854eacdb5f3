from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.everything import Everything, everything_gateway

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e starts processes (the CLI, MCP servers, SDK clients, node): e2e."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module", params=["stdio", "http"])
def everything(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Everything]:
    """server-everything behind the real CLI, over stdio (recorded) and over Streamable HTTP."""
    with everything_gateway(request.param, tmp_path_factory.mktemp("everything")) as gateway:
        yield gateway
