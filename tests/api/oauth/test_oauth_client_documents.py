"""Client ID Metadata Documents: a client whose client_id is the URL of its metadata document authorizes
without registering; the document is fetched (under the SSRF rules; this module's gateway allows the
loopback host for its local document server), checked, and kept for the token endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.oauth.flow import REDIRECT, Flow, pkce
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.json_server import JsonServer
from tests.support import ECHO_COMMAND, write_config


@pytest.fixture(scope="module")
def documents() -> Iterator[JsonServer]:
    server = JsonServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    oauth = {"clientMetadataAllowPrivate": True}
    config = write_config(Path(tmp_path_factory.mktemp("cimd")), {"oauth": oauth, "authFailureLimit": 100_000})
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config) as gateway:
        yield gateway


@pytest.fixture
def flow(gw: InProcessGateway) -> Iterator[Flow]:
    with httpx.Client(follow_redirects=False, timeout=30.0) as client:
        yield Flow(gw.url, client)


def publish(documents: JsonServer, name: str, **fields: Any) -> str:
    client_id = f"{documents.url}/clients/{name}.json"
    documents.documents[f"/clients/{name}.json"] = {
        "client_id": client_id,
        "client_name": f"Agent {name}",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        **fields,
    }
    return client_id


def test_the_server_says_it_takes_metadata_documents(gw: InProcessGateway) -> None:
    metadata = gw.client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["client_id_metadata_document_supported"] is True


def test_a_url_client_authorizes_and_gets_tokens_without_registering(
    gw: InProcessGateway, flow: Flow, documents: JsonServer
) -> None:
    key = gw.create_key(10)
    client_id = publish(documents, "alpha")
    tokens = flow.tokens(client_id, key)
    assert tokens["access_token"].startswith("pg_at_")
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}
    answer = gw.client.post("/mcp", json=call, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert "result" in answer.json() and gw.balance(key) == 9
    listed = gw.client.get("/oauth/clients", headers=gw.admin()).json()
    [mine] = [c for c in listed["clients"] if c["clientId"] == client_id]
    assert mine["clientName"] == "Agent alpha" and mine["confidential"] is False
    fetched = documents.requests.count("/clients/alpha.json")
    flow.tokens(client_id, key)  # a second authorization within the hour: the document is not fetched again
    assert documents.requests.count("/clients/alpha.json") == fetched == 1


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"client_id": "https://elsewhere.example/client.json"}, "its client_id is not the URL"),
        ({"redirect_uris": ["https://evil.example/cb#frag"]}, "fragment"),
        ({"redirect_uris": []}, "redirect_uris"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "public"),
        ({"client_secret": "s3cret"}, "public"),
        ({"scope": "admin:everything"}, "scope"),
    ],
)
def test_an_unacceptable_document_is_a_400_that_stores_nothing(
    gw: InProcessGateway, flow: Flow, documents: JsonServer, fields: dict[str, Any], why: str
) -> None:
    client_id = publish(documents, "bad-" + "".join(c for c in why if c.isalnum())[:24], **fields)
    _, challenge = pkce()
    page = flow.client.get(f"{gw.url}/oauth/authorize", params=flow.authorize_params(client_id, challenge))
    assert page.status_code == 400 and why in page.text
    listed = gw.client.get("/oauth/clients", headers=gw.admin()).json()["clients"]
    assert client_id not in [c["clientId"] for c in listed]


def test_a_missing_document_or_a_redirect_uri_it_does_not_list_is_refused(
    gw: InProcessGateway, flow: Flow, documents: JsonServer
) -> None:
    _, challenge = pkce()
    missing = f"{documents.url}/clients/nobody.json"
    page = flow.client.get(f"{gw.url}/oauth/authorize", params=flow.authorize_params(missing, challenge))
    assert page.status_code == 400 and "HTTP 404" in page.text
    client_id = publish(documents, "beta")
    params = {**flow.authorize_params(client_id, challenge), "redirect_uri": "http://127.0.0.1:9/other"}
    assert flow.client.get(f"{gw.url}/oauth/authorize", params=params).status_code == 400
