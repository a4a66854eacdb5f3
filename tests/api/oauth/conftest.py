from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, write_config


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    """A gateway with OAuth on (defaults: issuer and resource from the request's base URL)."""
    config = write_config(Path(tmp_path_factory.mktemp("oauth")), {"oauth": {}, "authFailureLimit": 100_000})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config) as gateway:
        yield gateway
