from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    """One real gateway app per module, served in-process (tests/inprocess.py), the echo server's
    double as its backend. Tests make their own keys."""
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gateway:
        yield gateway
