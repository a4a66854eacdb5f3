from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.everything import Everything, everything_gateway


@pytest.fixture(scope="module", params=["stdio", "http"])
def everything(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Everything]:
    """server-everything behind the real CLI, over stdio (recorded) and over Streamable HTTP."""
    with everything_gateway(request.param, tmp_path_factory.mktemp("everything")) as gateway:
        yield gateway
