from __future__ import annotations

import gc
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings

from paygate.store.sqlite import MEMORY, SQLiteStore
from tests import support
from tests.support import ECHO_COMMAND, Gateway, running_gateway

# The public-endpoint and admin-API limits per client address (300 and 120 a minute by default) would
# throttle the suite: every test talks from 127.0.0.1, and a module shares one gateway. Off for every
# gateway the tests start, in-process or as a process (it inherits the environment); the tests of the
# limits themselves (tests/api/test_http_conventions.py) set them again.
os.environ["PAYGATE_ADMIN_RATE_LIMIT"] = "0"
os.environ["PAYGATE_PUBLIC_RATE_LIMIT"] = "0"

# Hypothesis's per-example deadline (200 ms) is a timing assertion: on a loaded 2-core machine an example
# that is correct can miss it. Speed is measured in bench/, never asserted in a test; a test that sets its
# own deadline keeps it.
settings.register_profile("paygate", deadline=None)
settings.load_profile("paygate")


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection built (test items, imported modules, hypothesis and schemathesis) lives until the
    end: frozen, every later full garbage collection of the worker skips it (measured on 22 tests/api
    modules: 12.1 -> 8.9 s of the run's ~100 s of CPU spent in the collector)."""
    gc.collect()
    gc.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture of the test is set up: may it start processes? Only e2e tests may
    (`-m "not e2e"` is the in-process tier and must stay one: support.start_gateway checks this)."""
    support.PROCESSES_ALLOWED = item.get_closest_marker("e2e") is not None


@pytest.fixture(autouse=True)
def _no_processes_outside_e2e(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test not marked e2e that starts any process (subprocess, asyncio's subprocesses) fails loudly."""
    if request.node.get_closest_marker("e2e") is None:

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise AssertionError(f"{request.node.nodeid} starts a process but is not marked e2e")

        monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
    yield


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server for this test process (one per xdist worker); tests share it through prefixes."""
    from tests.redis_server import running_redis

    with running_redis() as server:
        yield server.url


@pytest.fixture
def echo_gateway() -> Iterator[Gateway]:
    """The real CLI wrapping our own echo server over stdio, in-memory state, no rate limit."""
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gw:
        yield gw


@pytest.fixture
def memory_store() -> Iterator[SQLiteStore]:
    """An empty SQLite store in memory, closed after the test."""
    store = SQLiteStore(MEMORY)
    store.open()
    try:
        yield store
    finally:
        store.close()
