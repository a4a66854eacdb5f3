"""Issue 11 item 19: the configuration-time webhook URL check and the delivery-time one are one check.

A URL spelling 127.0.0.1 in full-width digits was accepted when configured, then refused at delivery
(the resolver reads it as 127.0.0.1). Both paths now judge the host as a resolver spells it
(`canonical_host`), so every trick below is refused at both.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paygate.webhooks.ssrf import UnsafeUrl, canonical_host, check_url, resolve
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND

TRICKS = [
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",  # full-width digits
    "http://127\u30020\u30020\u30021/",  # ideographic full stops
    "http://127\uff0e0\uff0e0\uff0e1/",  # full-width full stops
    "http://\uff2c\uff2f\uff23\uff21\uff2c\uff28\uff2f\uff33\uff34/",  # full-width LOCALHOST
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11\uff0e/",  # ... with a full-width trailing dot
    "http://2130706433/",  # decimal
    "http://0177.0.0.1/",  # octal
    "http://0x7f.0.0.1/",  # hex octet
    "http://0x7f000001/",  # hex
    "http://127.1/",  # short form
    "http://0/",  # 0.0.0.0
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/",  # the same, in hex
    "http://[::1]/",
    "http://127.0.0.1./",  # trailing dot
    "http://localhost./",
    "http://LOCALHOST/",
    "http://169.254.169.254./latest/meta-data",
    "http://[::ffff:169.254.169.254]/",
    "http://metadata.google.internal./",
    "http://10.0.0.1/",
    "http://user:pw@127.0.0.1:8080/",
    "http://" + "a" * 70 + ".example.com/",  # not a DNS name: getaddrinfo could not even encode it
]


@pytest.mark.parametrize("url", TRICKS)
def test_the_configuration_check_refuses_it(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        check_url(url, allow_private=False)


@pytest.mark.parametrize("url", TRICKS)
async def test_the_delivery_check_refuses_it_before_resolving(url: str) -> None:
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["93.184.216.34"]  # a public answer: only the URL itself can be why it is refused

    with pytest.raises(UnsafeUrl):
        await resolve(url, False, resolver)
    assert asked == []


async def test_the_delivery_resolves_the_very_name_the_check_judged() -> None:
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["93.184.216.34"]

    target = await resolve("https://\uff28\uff2f\uff2f\uff2b\uff33.example.com./in", False, resolver)
    assert asked == ["hooks.example.com"] and target.address == "93.184.216.34"
    assert canonical_host("B\u00fccher.example.") == "xn--bcher-kva.example"


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway("--server", ECHO_COMMAND) as gateway:
        yield gateway


@pytest.mark.parametrize("url", TRICKS[:6])
def test_a_webhook_filter_with_it_is_a_400_that_changes_nothing(gw: InProcessGateway, url: str) -> None:
    before = gw.client.get("/webhooks/filters", headers=gw.admin()).json()
    resp = gw.client.post(
        "/webhooks/filters", headers=gw.admin(), json={"name": "trick", "events": ["key.created"], "url": url}
    )
    assert resp.status_code == 400, resp.text
    assert set(resp.json()) >= {"error", "requestId"}
    assert gw.client.get("/webhooks/filters", headers=gw.admin()).json() == before
