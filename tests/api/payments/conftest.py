from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.stripe_support import StripeStandIn, stripe_config, stripe_standin
from tests.support import ECHO_COMMAND


@pytest.fixture(scope="module")
def standin() -> Iterator[StripeStandIn]:
    with stripe_standin() as server:
        yield server


@pytest.fixture(scope="module")
def gw(standin: StripeStandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    """A gateway with Stripe configured from a config file (webhook secret, Checkout against the stand-in)."""
    config = tmp_path_factory.mktemp("stripe") / "paygate.json"
    config.write_text(json.dumps(stripe_config(standin.url)))
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", str(config)) as g:
        yield g


def config_file(tmp: Path, body: dict[str, object]) -> str:
    path = tmp / "paygate.json"
    path.write_text(json.dumps(body))
    return str(path)
