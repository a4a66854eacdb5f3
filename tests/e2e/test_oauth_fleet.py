"""OAuth on a Redis fleet: two `paygate-mcp wrap --redis-url …` instances with one configured issuer. The
consent page served by one instance is approved on the other, the code is exchanged there, the token is
accepted by both, and a revocation on one is refused by the other: every OAuth document is the fleet's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.oauth.flow import REDIRECT, Flow, form_fields, pkce, query_of
from tests.redis_fleet import start_fleet, stop_all
from tests.support import Gateway, wait_until, write_config

DEADLINE = 10.0  # pub/sub normally; the store's periodic refresh at worst
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


@pytest.fixture
def fleet(redis_url: str, tmp_path: Path) -> Iterator[list[Gateway]]:
    # one issuer for the fleet: each instance's own base URL (its port) would be another resource
    config = write_config(tmp_path, {"oauth": {"issuer": "http://fleet.test"}})
    gateways = start_fleet(2, redis_url, "--rate-limit", "0", "--redis-prefix", "oauthfleet", "--config", config)
    yield gateways
    stop_all(gateways)


def status(gw: Gateway, token: str) -> int:
    return gw.client.post("/mcp", json=PING, headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_grant_made_on_one_instance_holds_on_the_other(fleet: list[Gateway]) -> None:
    a, b = fleet
    key = a.create_key(10)
    with httpx.Client(follow_redirects=False, timeout=30.0) as browser:
        reg = Flow(a.url, browser).register()
        wait_until(
            lambda: b.client.get("/oauth/clients", headers=b.admin()).json()["total"] >= 1, DEADLINE, "client on B"
        )
        verifier, challenge = pkce()
        params = Flow(a.url, browser).authorize_params(reg["client_id"], challenge)
        page = browser.get(f"{a.url}/oauth/authorize", params=params)  # the page from A …
        fields = form_fields(page.text) | {"decision": "approve", "api_key": key}
        answer = browser.post(f"{b.url}/oauth/authorize", data=fields)  # … approved on B (one CSRF secret)
        assert answer.status_code == 303, answer.text
        got = query_of(answer.headers["location"])
        assert got["iss"] == "http://fleet.test" and answer.headers["location"].startswith(REDIRECT)
        tokens = Flow(b.url, browser).exchange(reg["client_id"], got["code"], verifier)
        assert tokens.status_code == 200, tokens.text
        access = tokens.json()["access_token"]
        assert status(b, access) == 200
        wait_until(lambda: status(a, access) == 200, DEADLINE, "the token accepted by A")
        # the code is spent fleet-wide: replayed on A, it is refused and revokes what it gave
        replay = Flow(a.url, browser).exchange(reg["client_id"], got["code"], verifier)
        assert replay.status_code == 400
        wait_until(lambda: status(b, access) == 401, DEADLINE, "the revocation seen by B")
        assert status(a, access) == 401
