"""An OAuth access token on the key holder's own endpoints (the portal's OAuth sign-in): it stands for the key
it was issued for on GET /balance, /balance/history, /balance/rate-limit-status and /balance/alerts; a
revoked, unknown or refresh token is a 401, and it can never rotate the key (POST /portal/rotate)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.oauth.flow import Flow
from tests.inprocess import InProcessGateway

READS = ("/balance", "/balance/history", "/balance/rate-limit-status", "/balance/alerts")


@pytest.fixture
def flow(gw: InProcessGateway) -> Iterator[Flow]:
    with httpx.Client(follow_redirects=False, timeout=30.0) as client:
        yield Flow(gw.url, client)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_access_token_reads_and_sets_what_its_key_would(gw: InProcessGateway, flow: Flow) -> None:
    key = gw.create_key(12, name="signed in with OAuth")
    tokens = flow.tokens(flow.register()["client_id"], key)
    access = tokens["access_token"]
    for path in READS:
        by_token = gw.client.get(path, headers=bearer(access))
        assert by_token.status_code == 200, (path, by_token.text)
        assert by_token.json() == gw.client.get(path, headers={"X-API-Key": key}).json(), path
    assert gw.client.get("/balance", headers=bearer(access)).json()["name"] == "signed in with OAuth"
    saved = gw.client.post("/balance/alerts", json={"lowCreditThreshold": 4}, headers=bearer(access))
    assert saved.status_code == 200, saved.text
    assert gw.client.get("/balance/alerts", headers={"X-API-Key": key}).json()["alert"]["lowCreditThreshold"] == 4


def test_refused_tokens_are_401_and_a_token_cannot_rotate_the_key(gw: InProcessGateway, flow: Flow) -> None:
    key = gw.create_key(12)
    tokens = flow.tokens(flow.register()["client_id"], key)
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    rotate = gw.client.post("/portal/rotate", headers=bearer(access))
    assert rotate.status_code == 401 and gw.balance(key) == 12  # the key still works: nothing changed
    for token in (refresh, "pg_at_" + "0" * 64):
        assert gw.client.get("/balance", headers=bearer(token)).status_code == 401
    scoped = gw.client.post("/tokens", json={"key": key, "ttl": 300}, headers=gw.admin())
    assert scoped.status_code == 201, scoped.text
    refused = gw.client.get("/balance", headers=bearer(scoped.json()["token"]))
    assert refused.status_code == 401 and "OAuth" in refused.json()["error"]
    assert gw.client.post("/oauth/revoke", data={"token": access}).status_code == 200
    for path in READS:
        assert gw.client.get(path, headers=bearer(access)).status_code == 401, path
