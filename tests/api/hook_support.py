"""Shared by the gateway-hook and webhook-replay tests: fast webhook timing (one retry, short backoff) and
a gateway that may deliver to the loopback receiver (tests/webhook_receiver.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, write_config

FAST = {"webhookFlushSeconds": 0.05, "webhookRetryBaseSeconds": 0.05, "webhookMaxRetries": 1}


@contextmanager
def fast_gateway(directory: Path) -> Iterator[InProcessGateway]:
    config = write_config(directory, FAST)
    args = ("--server", ECHO_COMMAND, "--rate-limit", "0", "--webhook-allow-private", "--config", config)
    with running_inprocess_gateway(*args) as gateway:
        yield gateway
