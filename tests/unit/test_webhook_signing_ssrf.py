"""Webhook signatures (sign / verify_signature) and SSRF classification of URLs and addresses."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from paygate.core.netaddr import parse_ip
from paygate.http.h1 import H1Pool
from paygate.webhooks import parse_signature, sign, verify_signature
from paygate.webhooks.sender import Sender
from paygate.webhooks.ssrf import UnsafeUrl, blocked_reason, check_url, resolve, shown
from tests.webhook_receiver import receiving

BODY = b'{"events":[],"adminEvents":[]}'


def test_a_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    header = sign("whsec_x", BODY, timestamp=1_700_000_000)
    expected = hmac.new(b"whsec_x", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_verify_accepts_the_right_secret_and_body_within_the_tolerance() -> None:
    header = sign("whsec_x", BODY, timestamp=1_000)
    assert verify_signature(BODY, header, "whsec_x", now=1_100)
    assert verify_signature(BODY.decode(), header, b"whsec_x", now=1_000)


@pytest.mark.parametrize(
    ("body", "secret", "now"),
    [
        (BODY + b" ", "whsec_x", 1_000),
        (BODY, "whsec_y", 1_000),
        (BODY, "whsec_x", 1_301),
        (BODY, "whsec_x", 699),
    ],
)
def test_verify_refuses_a_changed_body_wrong_secret_or_stale_timestamp(body: bytes, secret: str, now: float) -> None:
    assert not verify_signature(body, sign("whsec_x", BODY, timestamp=1_000), secret, now=now)


def test_tolerance_zero_disables_the_age_check_and_any_v1_may_match() -> None:
    header = sign("new", BODY, timestamp=5)
    assert verify_signature(BODY, header, "new", tolerance=0, now=10**9)
    rotated = f"t=5,v1={'0' * 64},{header.split(',')[1]}"
    assert verify_signature(BODY, rotated, "new", tolerance=0)


@pytest.mark.parametrize("header", [None, "", "garbage", "t=abc,v1=00", "v1=00", "t=5", "t=5,v1", "t=5;v1=00"])
def test_malformed_headers_never_verify(header: str | None) -> None:
    assert not verify_signature(BODY, header, "s", tolerance=0)


def test_parse_signature_reads_timestamp_and_every_v1() -> None:
    assert parse_signature("t=12,v1=ab,v1=cd,v0=zz") == (12, ["ab", "cd"])


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.1", "private"),
        ("169.254.169.254", "metadata"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "not a public"),
        ("::ffff:127.0.0.1", "loopback"),
        ("240.0.0.1", "private"),
    ],
)
def test_non_public_addresses_are_blocked_with_a_reason(ip: str, reason: str) -> None:
    addr = parse_ip(ip)
    assert addr is not None
    found = blocked_reason(addr)
    assert found is not None and reason in found


@pytest.mark.parametrize("ip", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_pass(ip: str) -> None:
    addr = parse_ip(ip)
    assert addr is not None and blocked_reason(addr) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8080/x",
        "http://api.localhost/",
        "http://[::1]:9/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://metadata.google.internal/",
        "http://10.0.0.5/",
        "http://[::ffff:10.0.0.1]/",
    ],
)
def test_local_urls_are_refused_at_configuration_time_unless_allowed(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="webhookAllowPrivate"):
        check_url(url, allow_private=False)
    check_url(url, allow_private=True)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/", "http:// or https://"),
        ("https:///path", "no host"),
        ("https://exa mple.com/", "spaces"),
        ("https://example.com:0/", "port 0"),
        ("https://example.com/" + "a" * 2048, "longer than"),
        ("https://example.com:99999/", "not a valid URL"),
    ],
)
def test_malformed_urls_are_refused_even_when_private_addresses_are_allowed(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrl, match=why):
        check_url(url, allow_private=True)


def test_shown_urls_keep_scheme_and_host_only() -> None:
    assert shown("https://user:pw@hooks.example.com:8443/t/secret?token=1") == "https://hooks.example.com:8443/***"
    assert shown("not a url") == "***"


def resolver(answers: list[str]):  # type: ignore[no-untyped-def]
    async def resolve_(host: str, port: int) -> list[str]:
        return answers

    return resolve_


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery_time() -> None:
    with pytest.raises(UnsafeUrl, match="resolves to a private address"):
        await resolve("https://hooks.example.com/x", False, resolver(["93.184.216.34", "10.0.0.7"]))


async def test_a_public_name_is_pinned_to_its_vetted_address_and_credentials_become_basic_auth() -> None:
    target = await resolve("https://u:p%40ss@hooks.example.com:8443/x?y=1", False, resolver(["93.184.216.34"]))
    assert target.url == "https://hooks.example.com:8443/x?y=1" and target.address == "93.184.216.34"
    assert target.headers == {"Authorization": "Basic dTpwQHNz"}  # u:p@ss
    allowed = await resolve("http://h.example.com/", True, resolver(["10.0.0.1"]))
    assert (allowed.url, allowed.address) == ("http://h.example.com/", None)


async def test_a_pinned_connection_goes_to_the_vetted_address_with_the_names_host_header() -> None:
    with receiving() as receiver:
        pool = H1Pool(f"http://hooks.example.com:{receiver.port}/in", connect_host="127.0.0.1")
        try:
            async with pool.stream("POST", {"Content-Type": "application/json"}, BODY) as response:
                assert response.status_code == 200
        finally:
            await pool.aclose()
        (request,) = receiver.requests
        assert request.path == "/in" and request.headers["host"] == f"hooks.example.com:{receiver.port}"


async def test_the_sender_posts_signed_with_retry_headers_and_never_follows_redirects() -> None:
    with receiving() as receiver:
        sender = Sender(5, True)
        try:
            receiver.fail_next(1, status=302)
            redirected = await sender.post(receiver.url("/in"), BODY, secret="s", attempt=2, delivery_id=7)
            assert not redirected.ok and redirected.status == 302 and redirected.error == "HTTP 302"
            assert len(receiver.requests) == 1
            first = receiver.requests[0]
            assert first.headers["x-paygate-retry"] == "2" and first.headers["x-paygate-delivery"] == "7"
            assert verify_signature(first.body, first.headers["x-paygate-signature"], "s") and first.body == BODY
            url = receiver.url("/in").replace("http://", "http://hook:pw@")
            assert (await sender.post(url, BODY, secret=None)).ok
            second = receiver.requests[1]
            assert "x-paygate-signature" not in second.headers and "x-paygate-retry" not in second.headers
            assert second.headers["authorization"] == "Basic aG9vazpwdw=="  # hook:pw, never in the URL sent
        finally:
            await sender.close()


async def test_the_sender_reports_refused_addresses_and_dead_receivers_without_raising() -> None:
    refused = await Sender(5, False, resolver=resolver(["127.0.0.1"])).post("https://evil.example/", BODY, secret=None)
    assert refused.status == 0 and refused.error is not None and "loopback" in refused.error
    with receiving() as receiver:
        url = receiver.url("/gone")
    sender = Sender(2, True)
    try:
        down = await sender.post(url, BODY, secret=None)
    finally:
        await sender.close()
    assert not down.ok and down.status == 0 and down.error is not None and "ConnectFailed" in down.error
