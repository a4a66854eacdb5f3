"""Property: with dedup on and the response cache on or off, any mix of repeated and concurrent calls (with
or without idempotency keys, some reusing a key for other arguments) charges exactly one credit per real
run of the tool and nothing else: a replay, a coalesced duplicate, a cache hit and a refused conflict are
never charged; a key's idempotent call runs at most once; balance + spent == initial."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.echo_backend import EchoBackend
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, write_config

EXAMPLES = itertools.count(1)
IDEMS = [None, "k1", "k2", "k3"]
# One request: (idempotency key or None, which of two argument values); a wave's requests are sent at once.
request = st.tuples(st.sampled_from(IDEMS), st.integers(0, 1))
waves = st.lists(st.lists(request, min_size=1, max_size=4), min_size=1, max_size=3)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    config = write_config(tmp_path_factory.mktemp("credits"), {"dedupEnabled": True})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config) as gateway:
        yield gateway


def seconds_for(example: int, idem: str | None, choice: int) -> float:
    """A `slow` duration unique to this example, idempotency key and argument choice (so the backend's
    record of runs says which request ran), short enough to overlap the wave's other requests."""
    slot = IDEMS.index(idem) * 2 + choice
    return round(0.02 + example * 1e-5 + slot * 1e-7, 9)


async def send(gw: InProcessGateway, key: str, wave: list[tuple[str | None, float]]) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:

        async def one(i: int, idem: str | None, seconds: float) -> dict[str, Any]:
            headers = {"X-API-Key": key, **({"X-Idempotency-Key": idem} if idem else {})}
            params = {"name": "slow", "arguments": {"seconds": seconds}}
            body = {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}
            resp = await client.post("/mcp", json=body, headers=headers)
            assert resp.status_code == 200, resp.text
            return dict(resp.json())

        return list(await asyncio.gather(*(one(i, idem, s) for i, (idem, s) in enumerate(wave))))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=waves, cache_on=st.booleans(), initial=st.integers(20, 40))
def test_each_run_is_charged_once_and_nothing_else_is(
    gw: InProcessGateway, plan: list[list[tuple[str | None, int]]], cache_on: bool, initial: int
) -> None:
    assert gw.rt is not None and isinstance(gw.rt.backend, EchoBackend)
    backend = gw.rt.backend
    resp = gw.client.post("/admin/cache", json={"ttlSeconds": 60 if cache_on else 0}, headers=gw.admin())
    assert resp.status_code == 200
    example = next(EXAMPLES)
    key = gw.create_key(initial)  # a fresh key: idempotency keys and cache entries start empty
    coalesced = gw.client.get("/admin/dedup", headers=gw.admin()).json()["coalesced"]
    answers: dict[str, set[str]] = {}
    requests_without_key = 0
    for wave in plan:
        sent = [(idem, seconds_for(example, idem, choice)) for idem, choice in wave]
        replies = asyncio.run(send(gw, key, sent))
        for (idem, seconds), reply in zip(sent, replies, strict=True):
            if "error" in reply:  # only a key reused for other arguments is refused
                assert reply["error"]["code"] == -32602 and "another call" in reply["error"]["message"], reply
                assert idem is not None
                event("conflict refused")
                continue
            assert reply["result"]["content"][0]["text"] == f"slept {seconds}"
            if idem is None:
                requests_without_key += 1
            else:
                answers.setdefault(idem, set()).add(reply["result"]["content"][0]["text"])
    ran = {s: backend.started.count(s) for idem in IDEMS for s in (seconds_for(example, idem, c) for c in (0, 1))}
    total_runs = sum(ran.values())
    assert initial - gw.balance(key) == total_runs  # one credit per run; replays, hits, conflicts: nothing
    for idem in IDEMS[1:]:  # an idempotency key's call ran at most once, and every answer under it is that one
        assert sum(ran[seconds_for(example, idem, c)] for c in (0, 1)) <= 1
        assert len(answers.get(idem, ())) <= 1
    unkeyed = sum(ran[seconds_for(example, None, c)] for c in (0, 1))
    if cache_on:
        assert unkeyed <= requests_without_key
        event("cache on")
    else:  # without the header, calls are never merged
        assert unkeyed == requests_without_key
    if gw.client.get("/admin/dedup", headers=gw.admin()).json()["coalesced"] > coalesced:
        event("concurrent duplicates coalesced")
    if total_runs < sum(len(w) for w in plan):
        event("some calls answered without running")
