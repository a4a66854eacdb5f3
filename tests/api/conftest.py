from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import ECHO_COMMAND, Gateway, running_gateway


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    """One real gateway per module (echo server over stdio). Tests make their own keys."""
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gateway:
        yield gateway
