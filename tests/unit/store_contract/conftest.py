"""The store contract: every test in this package runs once per store implementation.

To check a new store against the contract, add one entry to `IMPLEMENTATIONS`: a factory that, given an
empty directory (and a server URL), builds an unopened store; calling it again with the same directory must
give a store over the same state (that is what the reopen tests check) when `durable` is true. A
server-backed store (Redis) derives a fresh key prefix from the directory name; its cases are e2e, run on
the real `redis-server` of the `redis_url` fixture (tests/conftest.py), and fail, never skip, without it.

Tests go through the `Store` protocol only (never a connection), so they hold for any backend.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from paygate.core.records import KeyRecord, UsageEvent
from paygate.store.base import Store
from paygate.store.redis_backend.store import RedisStore
from paygate.store.sqlite import MEMORY, SQLiteStore


@dataclass(frozen=True)
class Implementation:
    make: Callable[[Path, str], Store]  # (the test's directory, a Redis URL or "")
    durable: bool  # the same directory opens the same state again
    server: bool = False  # needs a real redis-server (a process: such cases are e2e)


IMPLEMENTATIONS: dict[str, Implementation] = {
    "file": Implementation(lambda d, _: SQLiteStore(d / "state.db"), durable=True),
    "memory": Implementation(lambda d, _: SQLiteStore(MEMORY), durable=False),
    "redis": Implementation(lambda d, url: RedisStore(url, prefix=d.name), durable=True, server=True),
}

_serial = itertools.count(1)


def key(key_hash: str | None = None, credits: int = 10, **fields: object) -> KeyRecord:
    """A key record; a unique hash unless one is given."""
    h = key_hash or f"h{next(_serial):06d}"
    return KeyRecord(h, "pg_test", h[-4:], f"name-{h}", credits, time.time(), **fields)  # type: ignore[arg-type]


def call(
    key_hash: str,
    credits: int,
    tool: str = "echo",
    *,
    ts: float | None = None,
    allowed: bool = True,
    namespace: str = "default",
) -> UsageEvent:
    return UsageEvent(
        time.time() if ts is None else ts,
        key_hash,
        "pg_test…" + key_hash[-4:],
        "k",
        tool,
        credits,
        allowed,
        None if allowed else "insufficient_credits",
        namespace,
    )


def balanced(store: Store, key_hash: str) -> int:
    """The key's balance, asserted equal to the sum of its ledger and never below zero."""
    record = store.get_key(key_hash)
    assert record is not None
    assert record.credits >= 0
    assert record.credits == sum(e.delta for e in store.ledger(key_hash))
    return record.credits


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test runs on every implementation; a test that reopens its state, only on the durable ones
    (not collected for the others rather than skipped)."""
    if "implementation" in metafunc.fixturenames:
        names = [
            pytest.param(n, marks=[pytest.mark.e2e] if impl.server else [])
            for n, impl in sorted(IMPLEMENTATIONS.items())
            if impl.durable or "reopen" not in metafunc.fixturenames
        ]
        metafunc.parametrize("implementation", names, indirect=True)


@pytest.fixture
def implementation(request: pytest.FixtureRequest) -> Implementation:
    return IMPLEMENTATIONS[str(request.param)]


@pytest.fixture
def opened(
    implementation: Implementation, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Store]]:
    """Opens a store over the test's state; every store it opened is closed at the end."""
    stores: list[Store] = []
    url = str(request.getfixturevalue("redis_url")) if implementation.server else ""

    def open_store() -> Store:
        s = implementation.make(tmp_path, url)
        s.open()
        stores.append(s)
        return s

    yield open_store
    for s in reversed(stores):
        s.close()


@pytest.fixture
def store(opened: Callable[[], Store]) -> Store:
    return opened()


@pytest.fixture
def reopen(implementation: Implementation, store: Store, opened: Callable[[], Store]) -> Callable[[], Store]:
    """Close `store` and open its state again (durable implementations only: see pytest_generate_tests)."""
    assert implementation.durable

    def again() -> Store:
        store.close()
        return opened()

    return again
