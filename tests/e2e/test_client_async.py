"""paygate.client's AsyncPayGateClient (on the official mcp SDK client) against the real CLI in front of
our echo MCP server: prices, balance tracking, every denial it can be made to see as its typed error,
the pay-and-retry hook (admin topup, and Stripe Checkout through the stand-in) that never pays twice,
scoped tokens (also from a callable)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from paygate.client import (
    AclDenied,
    AsyncPayGateClient,
    AuthenticationError,
    InsufficientCredits,
    InvalidApiKey,
    KeyExpired,
    KeySuspended,
    MissingApiKey,
    PayGateError,
    QuotaExceeded,
    RateLimited,
)
from tests.stripe_support import session_completed, signed_post, stripe_config, stripe_standin
from tests.support import ECHO_COMMAND, Gateway, running_gateway, usage_events

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The echo server behind the CLI: `add` costs 2, everything else 1, Checkout on the Stripe stand-in."""
    config = tmp_path_factory.mktemp("client") / "paygate.json"
    with stripe_standin() as standin:
        config.write_text(json.dumps({**stripe_config(standin.url), "toolPricing": {"add": {"creditsPerCall": 2}}}))
        with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", str(config)) as gateway:
            gateway.standin = standin  # type: ignore[attr-defined]
            yield gateway


def denials(gw: Gateway, key_name: str) -> list[str]:
    return [e["denyReason"] for e in usage_events(gw, key_name) if not e["allowed"]]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tools_come_with_the_price_the_key_pays(gw: Gateway, mode: str) -> None:
    group = gw.client.post(
        "/groups", json={"name": f"vip-{mode}", "toolPricing": {"add": {"creditsPerCall": 7}}}, headers=gw.admin()
    ).json()
    plain, grouped = gw.create_key(5), gw.create_key(5)
    assigned = gw.client.post("/groups/assign", json={"groupId": group["id"], "key": grouped}, headers=gw.admin())
    assert assigned.status_code == 200, assigned.text
    async with AsyncPayGateClient(gw.url, api_key=plain, mode=mode) as client:  # type: ignore[arg-type]
        tools = {t.name: t for t in await client.list_tools()}
        assert {"echo", "add", "fail"} <= set(tools)
        assert tools["add"].pricing is not None and tools["add"].pricing.credits_per_call == 2
        assert tools["echo"].pricing is not None and tools["echo"].pricing.credits_per_call == 1
        assert tools["add"].pricing.pricing_model == "flat"
        assert tools["add"].input_schema["properties"].keys() == {"a", "b"}
        assert (await client.pricing())["add"].credits_per_call == 2
    async with AsyncPayGateClient(gw.url, api_key=grouped, mode=mode) as client:  # type: ignore[arg-type]
        tools = {t.name: t for t in await client.list_tools()}
        # the raw tools/list's _pricing (the key's own), where GET /pricing shows the default
        assert tools["add"].pricing is not None and tools["add"].pricing.credits_per_call == 7
        assert (await client.pricing())["add"].credits_per_call == 2


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_calls_and_the_credits_they_leave(gw: Gateway, mode: str) -> None:
    key = gw.create_key(10)
    async with AsyncPayGateClient(f"{gw.url}/mcp", api_key=key, mode=mode) as client:  # type: ignore[arg-type]
        assert client.credits_remaining == 10  # the handshake's answer said so already
        result = await client.call_tool("add", {"a": 2, "b": 3})
        assert not result.is_error and result.structured_content == {"result": 5}
        assert client.credits_remaining == 8  # X-Credits-Remaining of that answer
        await client.call_tool("echo", {"text": "hi"})
        assert client.credits_remaining == 7
        balance = await client.balance()
        assert (balance.credits, balance.total_spent, balance.total_calls) == (7, 3, 2)
        assert balance.quota_daily.calls == 2 and balance.quota_daily.credits == 3 and not balance.suspended
        gw.client.post("/topup", json={"key": key, "credits": 5}, headers=gw.admin())
        await client.call_tool("echo", {"text": "after a topup"})
        assert client.credits_remaining == 11
    assert gw.balance(key) == 11


async def test_each_denial_is_its_typed_error(gw: Gateway) -> None:
    async with AsyncPayGateClient(gw.url) as client:
        assert "add" in {t.name for t in await client.list_tools()}  # discovery needs no key
        with pytest.raises(MissingApiKey):
            await client.call_tool("add", {"a": 1, "b": 1})
        with pytest.raises(AuthenticationError) as no_key:
            await client.balance()
        assert no_key.value.code == 401 and no_key.value.http_status == 401
    async with AsyncPayGateClient(gw.url, api_key="pg_" + "0" * 48) as client:
        with pytest.raises(InvalidApiKey) as invalid:
            await client.call_tool("add", {"a": 1, "b": 1})
        assert invalid.value.code == -32402 and invalid.value.http_status == 401

    poor = gw.create_key(1)
    async with AsyncPayGateClient(gw.url, api_key=poor) as client:
        with pytest.raises(InsufficientCredits) as denied:
            await client.call_tool("add", {"a": 1, "b": 1})
        assert (denied.value.credits_required, denied.value.credits_remaining, denied.value.tool) == (2, 1, "add")
        assert denied.value.http_status == 402 and client.credits_remaining == 1

    acl = gw.create_key(5, deniedTools=["add"])
    async with AsyncPayGateClient(gw.url, api_key=acl) as client:
        with pytest.raises(AclDenied):
            await client.call_tool("add", {"a": 1, "b": 1})
        assert (await client.call_tool("echo", {"text": "allowed"})).structured_content == {"result": "allowed"}

    quota = gw.create_key(5, quota={"dailyCallLimit": 1})
    async with AsyncPayGateClient(gw.url, api_key=quota) as client:
        await client.call_tool("echo", {"text": "the one call"})
        with pytest.raises(QuotaExceeded):
            await client.call_tool("echo", {"text": "one too many"})

    suspended = gw.create_key(5)
    async with AsyncPayGateClient(gw.url, api_key=suspended) as client:
        await client.call_tool("echo", {"text": "before"})
        assert gw.client.post("/keys/suspend", json={"key": suspended}, headers=gw.admin()).status_code == 200
        with pytest.raises(KeySuspended) as susp:
            await client.call_tool("echo", {"text": "after"})
        assert susp.value.http_status == 403
    assert gw.balance(poor) == 1 and gw.balance(acl) == 4 and gw.balance(suspended) == 4


async def test_an_expired_key_is_key_expired(gw: Gateway) -> None:
    key = gw.create_key(100, expiresIn=1)
    deadline = time.monotonic() + 15
    async with AsyncPayGateClient(gw.url, api_key=key) as client:
        while True:  # polls until the second has passed (each call before that is a paid echo)
            try:
                await client.call_tool("echo", {"text": "still valid?"})
            except KeyExpired as expired:
                assert expired.http_status == 401 and isinstance(expired, AuthenticationError)
                break
            assert time.monotonic() < deadline, "the key never expired"
            await anyio.sleep(0.05)


async def test_rate_limited_says_when_to_come_back() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "2") as gw:
        key = gw.create_key(10)
        async with AsyncPayGateClient(gw.url, api_key=key) as client:
            for _ in range(2):
                await client.call_tool("echo", {"text": "within the limit"})
            with pytest.raises(RateLimited) as limited:
                await client.call_tool("echo", {"text": "over it"})
        assert limited.value.retry_after is not None and 0 < limited.value.retry_after <= 60
        assert limited.value.http_status == 429
        assert gw.balance(key) == 8


async def test_the_hook_tops_up_and_the_call_is_retried_once(gw: Gateway) -> None:
    key = gw.create_key(1)
    asked: list[PayGateError] = []

    async def top_up(denied: PayGateError) -> bool:
        asked.append(denied)
        resp = gw.client.post("/topup", json={"key": key, "credits": 10}, headers=gw.admin())
        return resp.status_code == 200

    async with AsyncPayGateClient(gw.url, api_key=key, on_payment_required=top_up) as client:
        result = await client.call_tool("add", {"a": 20, "b": 22})
        assert result.structured_content == {"result": 42}
        assert client.credits_remaining == 9
    assert [d.credits_required for d in asked] == [2]
    assert gw.balance(key) == 9
    assert [e["allowed"] for e in usage_events(gw, "test") if e["apiKey"] == f"{key[:7]}…{key[-4:]}"] == [False, True]


async def test_a_hook_that_always_says_retry_gets_one_retry_and_the_second_denial(gw: Gateway) -> None:
    key = gw.create_key(1, name="always-retry")
    calls: list[int] = []

    def always(denied: PayGateError) -> bool:  # a plain function: run off the event loop
        calls.append(denied.credits_remaining or 0)
        return True

    async with AsyncPayGateClient(gw.url, api_key=key, on_payment_required=always) as client:
        with pytest.raises(InsufficientCredits):
            await client.call_tool("add", {"a": 1, "b": 1})
        assert calls == [1]  # asked once for the logical call
        with pytest.raises(InsufficientCredits):
            await client.call_tool("add", {"a": 1, "b": 1})  # a new logical call: asked again, once
        assert calls == [1, 1]
    assert denials(gw, "always-retry") == ["insufficient_credits"] * 4  # two attempts per logical call
    assert gw.balance(key) == 1


async def test_a_hook_that_declines_is_not_retried(gw: Gateway) -> None:
    key = gw.create_key(0, name="declined")

    async def decline(denied: PayGateError) -> bool:
        return False

    async with AsyncPayGateClient(gw.url, api_key=key, on_payment_required=decline) as client:
        with pytest.raises(InsufficientCredits):
            await client.call_tool("echo", {"text": "no"})
    assert denials(gw, "declined") == ["insufficient_credits"]


async def test_the_hook_buys_credits_with_stripe_checkout_and_pays_once(gw: Gateway) -> None:
    standin = gw.standin  # type: ignore[attr-defined]
    key = gw.create_key(0, name="stripe-buyer")
    bought: list[str] = []

    async def buy(denied: PayGateError) -> bool:
        session = await client.checkout("starter")
        bought.append(session.url)
        assert session.credits == 100 and session.url.startswith("https://checkout.stripe.com/")
        # the buyer pays on Stripe's page; Stripe then tells the gateway (here: the signed event it would send)
        sent = standin.requests[-1]["form"]
        meta = {k[9:-1]: v for k, v in sent.items() if k.startswith("metadata[")}
        return bool(signed_post(gw.client, session_completed(meta, session=session.session_id)).status_code == 200)

    async with AsyncPayGateClient(gw.url, api_key=key, on_payment_required=buy) as client:
        assert (await client.call_tool("add", {"a": 1, "b": 2})).structured_content == {"result": 3}
        assert client.credits_remaining == 98
        assert (await client.call_tool("add", {"a": 3, "b": 4})).structured_content == {"result": 7}
    assert len(bought) == 1 and len([r for r in standin.requests if r["path"] == "/v1/checkout/sessions"]) >= 1
    assert gw.balance(key) == 96


async def test_a_scoped_token_narrows_the_tools_and_bills_its_key(gw: Gateway) -> None:
    key = gw.create_key(10)
    issued = gw.client.post("/tokens", json={"key": key, "allowedTools": ["echo"], "ttl": 300}, headers=gw.admin())
    token = issued.json()["token"]
    asked: list[str] = []

    def fresh() -> str:  # as an OAuth client would hand out a current access token
        asked.append("token")
        return str(token)

    for credential in (token, fresh):
        async with AsyncPayGateClient(gw.url, token=credential) as client:
            assert [t.name for t in await client.list_tools()] == ["echo"]
            assert (await client.call_tool("echo", {"text": "scoped"})).structured_content == {"result": "scoped"}
            assert client.credits_remaining == gw.balance(key)
            with pytest.raises(AclDenied):
                await client.call_tool("add", {"a": 1, "b": 1})
            with pytest.raises(AuthenticationError):
                await client.balance()  # /balance takes the API key itself
    assert len(asked) >= 3  # asked for every request, not once
    assert gw.balance(key) == 8


async def test_a_forged_token_is_refused(gw: Gateway) -> None:
    from paygate.client import InvalidToken

    async with AsyncPayGateClient(gw.url, token="pgt_not.a.token") as client:
        with pytest.raises(InvalidToken):
            await client.call_tool("echo", {"text": "x"})


async def test_a_denial_leaves_the_async_with_block_as_itself(gw: Gateway) -> None:
    key = gw.create_key(0)
    with pytest.raises(InsufficientCredits):  # not an exception group from the SDK's task groups
        async with AsyncPayGateClient(gw.url, api_key=key) as client:
            await client.call_tool("echo", {"text": "unpaid"})


def test_one_credential_at_most() -> None:
    with pytest.raises(ValueError, match="either"):
        AsyncPayGateClient("http://127.0.0.1:1", api_key="pg_x", token="pgt_y")


async def test_the_hook_pays_with_x402_and_a_payment_is_made_once(tmp_path: Path) -> None:
    """x402 on: the denial carries the offer; the hook answers a payment for the retry's `_meta`."""
    from tests.x402_facilitator import PAY_TO, Facilitator, payment

    facilitator = Facilitator()
    try:
        config = tmp_path / "x402.json"
        config.write_text(json.dumps({"x402": {"payTo": PAY_TO, "facilitatorUrl": facilitator.url}}))
        with running_gateway("--server", ECHO_COMMAND, "--config", str(config)) as x402_gw:
            key = x402_gw.create_key(0)
            offers: list[dict[str, object]] = []
            denied_as: list[type[PayGateError]] = []

            def pay(denied: PayGateError) -> dict[str, object]:
                assert denied.payment_required is not None and denied.http_status == 402
                [offer] = denied.payment_required["accepts"]
                offers.append(offer)
                denied_as.append(type(denied))
                return {"x402/payment": payment(offer)}

            async with AsyncPayGateClient(x402_gw.url, api_key=key, on_payment_required=pay) as client:
                paid = await client.call_tool("echo", {"text": "paid per call"})
                assert not paid.is_error and paid.structured_content == {"result": "paid per call"}
                assert (paid.meta or {})["x402/payment-response"]["success"] is True
            async with AsyncPayGateClient(x402_gw.url, on_payment_required=pay) as keyless:
                assert (await keyless.call_tool("echo", {"text": "no key"})).structured_content == {"result": "no key"}
            assert len(offers) == 2 and offers[0]["payTo"] == PAY_TO
            assert denied_as == [InsufficientCredits, MissingApiKey]
            assert x402_gw.balance(key) == 0  # the payment paid, not the key
    finally:
        facilitator.stop()
