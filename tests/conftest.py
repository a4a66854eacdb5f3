from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import ECHO_COMMAND, Gateway, running_gateway


@pytest.fixture
def echo_gateway() -> Iterator[Gateway]:
    """The real CLI wrapping our own echo server over stdio, in-memory state, no rate limit."""
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gw:
        yield gw
