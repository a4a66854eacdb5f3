"""The cache and dedup stages on their own, with a stand-in for the rest of the call chain: the paths an HTTP
test cannot time (a first call interrupted or refused while duplicates wait), the byte bound, and what
makes two calls "the same call"."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from paygate.billing.facts import ClientFacts
from paygate.mcp.call_context import CallContext
from paygate.mcp.jsonrpc import Message
from paygate.traffic import cache as cache_module
from paygate.traffic.cache import ResponseCache
from paygate.traffic.call_key import call_digest
from paygate.traffic.chain import ToolCall
from paygate.traffic.dedup import Dedup


class Key:
    key_hash = "h" * 64
    credits = 5


class Billing:
    """What the stages use of BillingService: the access check that charges nothing, the metrics' labels."""

    class metrics:
        @staticmethod
        def tool_label(tool: str) -> str:
            return tool

    def resolve(self, raw_key: str | None) -> Any:
        return Key()

    def check_call_access(self, raw_key: str | None, tool: str, client: Any) -> tuple[Any, None]:
        return Key(), None


class Store:
    def __init__(self) -> None:
        self.meta: dict[str, str] = {}

    def get_meta(self, name: str) -> str | None:
        return self.meta.get(name)

    def set_meta(self, name: str, value: str) -> None:
        self.meta[name] = value


class Events:
    def publish(self, type_: str, actor: str, **data: Any) -> None:
        pass


def tool_call(msg_id: int, arguments: dict[str, Any], idem: bytes | None = b"k") -> ToolCall:
    headers = {b"x-idempotency-key": idem} if idem is not None else {}
    ctx = CallContext("pg_key", "req", client=ClientFacts(None, None, headers))
    return ToolCall(msg_id, "t", {"name": "t", "arguments": arguments}, ctx)


def dedup() -> Dedup:
    return Dedup(
        Billing(),  # type: ignore[arg-type]
        Store(),  # type: ignore[arg-type]
        Events(),  # type: ignore[arg-type]
        lambda: None,
        enabled=True,
        window_seconds=300,
        max_entries=100,
        auto_key=False,
    )


def result(text: str) -> Message:
    return {"jsonrpc": "2.0", "id": 0, "result": {"content": [{"type": "text", "text": text}]}}


def test_waiters_on_an_interrupted_first_call_get_an_error_and_nothing_is_kept() -> None:
    stage = dedup()

    async def scenario() -> list[Any]:
        release = asyncio.Event()

        async def interrupted(call: ToolCall) -> Message:
            await release.wait()
            raise asyncio.CancelledError

        first = asyncio.create_task(stage.around(tool_call(1, {}), interrupted))
        await asyncio.sleep(0)
        waiter = asyncio.create_task(stage.around(tool_call(2, {}), interrupted))
        await asyncio.sleep(0)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await first
        answer = await waiter

        async def runs(call: ToolCall) -> Message:
            call.notes["credits"] = 1
            return result("ran")

        return [answer, await stage.around(tool_call(3, {}), runs)]

    waited, later = asyncio.run(scenario())
    assert waited["id"] == 2 and waited["error"]["code"] == -32603 and "interrupted" in waited["error"]["message"]
    assert later["result"]["content"][0]["text"] == "ran"  # the key was free again
    assert stage.coalesced == 1 and stage.credits_saved == 0


def test_waiters_on_a_refused_first_call_get_the_refusal_and_nothing_is_kept() -> None:
    stage = dedup()
    refusal: Message = {"jsonrpc": "2.0", "id": 0, "error": {"code": -32402, "message": "insufficient_credits"}}

    async def scenario() -> list[Message]:
        release = asyncio.Event()

        async def refused(call: ToolCall) -> Message:
            await release.wait()
            return dict(refusal)  # no notes["credits"]: refused before any charge

        first = asyncio.create_task(stage.around(tool_call(1, {}), refused))
        await asyncio.sleep(0)
        waiter = asyncio.create_task(stage.around(tool_call(2, {}), refused))
        await asyncio.sleep(0)
        release.set()
        return [await first, await waiter]

    first, waited = asyncio.run(scenario())
    assert first["error"] == waited["error"] == refusal["error"] and waited["id"] == 2
    assert stage.size() == 0 and stage.view()["entries"] == 0


def test_the_cache_holds_at_most_its_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "MAX_TOTAL_BYTES", 300)
    stage = ResponseCache(
        Billing(),  # type: ignore[arg-type]
        Store(),  # type: ignore[arg-type]
        Events(),  # type: ignore[arg-type]
        lambda: None,
        ttl_seconds=60,
        max_entries=None,
        tool_ttls={},
        shared_tools=frozenset(),
    )

    async def ran(call: ToolCall) -> Message:
        call.notes["credits"] = 1
        return result("x" * 100)

    async def scenario() -> None:
        for n in range(5):
            await stage.around(tool_call(n, {"n": n}, None), ran)

    asyncio.run(scenario())
    assert stage.max_entries == cache_module.DEFAULT_MAX_ENTRIES
    assert stage.size() == 2 and stage.view()["bytes"] <= 300  # ~130 bytes each: the oldest went first


def test_the_same_call_is_the_same_tool_and_arguments_whatever_their_order() -> None:
    a = call_digest("t", {"arguments": {"x": 1, "y": {"b": 2, "a": [1, {"d": 0, "c": 1}]}}})
    b = call_digest("t", {"arguments": {"y": {"a": [1, {"c": 1, "d": 0}], "b": 2}, "x": 1}, "_meta": {"p": 1}})
    assert a is not None and a == b
    assert call_digest("t", {}) == call_digest("t", {"arguments": {}})
    assert call_digest("u", {"arguments": {"x": 1}}) != call_digest("t", {"arguments": {"x": 1}})
    assert call_digest("t", {"arguments": {"x": 1}}) != call_digest("t", {"arguments": {"x": "1"}})
    assert call_digest("t", {"arguments": [1]}) is None
    assert call_digest("t", {"arguments": {"x": 2**70}}) is None  # not written canonically: never matched


def test_a_fleet_follows_a_peers_runtime_settings_on_its_ticker() -> None:
    store, refreshed = Store(), []
    mine = Dedup(
        Billing(),  # type: ignore[arg-type]
        store,  # type: ignore[arg-type]
        Events(),  # type: ignore[arg-type]
        lambda: refreshed.append("dedup"),
        enabled=False,
        window_seconds=300,
        max_entries=100,
        auto_key=False,
        fleet=True,
    )
    cache = ResponseCache(
        Billing(),  # type: ignore[arg-type]
        store,  # type: ignore[arg-type]
        Events(),  # type: ignore[arg-type]
        lambda: refreshed.append("cache"),
        ttl_seconds=0,
        max_entries=None,
        tool_ttls={},
        shared_tools=frozenset(),
        fleet=True,
    )
    peer = dedup()
    peer.store = store  # type: ignore[assignment]
    peer.configure({"windowSeconds": 60}, "admin")  # on another instance sharing the store
    store.set_meta(cache_module.META_KEY, '{"ttlSeconds": 30, "maxEntries": 5}')
    mine.tick(1000.0)
    cache.tick(1000.0)
    assert (mine.enabled, mine.window_seconds) == (True, 60) and (cache.enabled, cache.ttl_seconds) == (True, 30)
    assert refreshed == ["dedup", "cache"]  # each switched its stage on in the chain
