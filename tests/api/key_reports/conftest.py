"""The gateway the per-key report tests run against (one per module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.key_reports.support import CONFIG, GLOBAL_LIMIT
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, write_config


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    """Global limit 10/min; `add` costs 2 and has its own limit of 3/min; everything else costs 1."""
    config = write_config(tmp_path_factory.mktemp("reports"), CONFIG)
    args = ("--server", ECHO_COMMAND, "--rate-limit", str(GLOBAL_LIMIT), "--config", config)
    with running_inprocess_gateway(*args) as g:
        yield g
