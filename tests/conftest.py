from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import ECHO_COMMAND, Gateway, start_gateway


@pytest.fixture
def echo_gateway() -> Iterator[Gateway]:
    """The real CLI wrapping our own echo server over stdio, in-memory state, no rate limit."""
    gw = start_gateway("--server", ECHO_COMMAND, "--rate-limit", "0")
    try:
        yield gw
    finally:
        gw.stop()
