"""An external authorization server's JWT access tokens (credentials/external.py): the gateway, as a resource
server, fetches the issuer's metadata and keys from a local issuer, accepts tokens for its own audience
billed to the key whose alias is the token's subject, narrows them by their `tools:` scopes, and refuses
every other token before any charge."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from paygate.config_auth import ExternalAuthConfig
from paygate.credentials.external import tools_of_scope
from tests.api.policy_support import denial, set_alias
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.json_server import JsonServer
from tests.support import ECHO_COMMAND, wait_until

AUDIENCE = "https://gateway.example/mcp"


class Issuer:
    """A local authorization server: its metadata and JWKS over HTTP on 127.0.0.1, and tokens it signs."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {"k1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.http = JsonServer()
        self.url = self.http.url
        self.http.documents["/.well-known/oauth-authorization-server"] = {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/jwks",
        }
        self.http.documents["/jwks"] = lambda: {"keys": [self.jwk(kid) for kid in self.keys]}

    def jwk(self, kid: str) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
        return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}

    def token(self, sub: str, *, kid: str = "k1", key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300, **claims}
        return jwt.encode(body, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def stop(self) -> None:
        self.http.stop()


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    server = Issuer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    config = tmp_path_factory.mktemp("external") / "config.json"
    external = {"issuer": issuer.url, "audience": AUDIENCE, "allowPrivate": True}
    config.write_text(json.dumps({"externalAuth": external, "oauth": {}}))
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", str(config)) as g:
        yield g


def holder(gw: InProcessGateway, alias: str, credits: int = 10) -> str:
    raw = gw.create_key(credits)
    set_alias(gw, raw, alias)
    return raw


def call(gw: InProcessGateway, token: str, tool: str = "echo") -> dict[str, Any]:
    arguments: dict[str, Any] = {"text": "hi"} if tool == "echo" else {"a": 1, "b": 2}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    return dict(gw.client.post("/mcp", json=body, headers={"Authorization": f"Bearer {token}"}).json())


def test_a_token_bills_the_key_its_subject_names_within_its_scopes(gw: InProcessGateway, issuer: Issuer) -> None:
    raw = holder(gw, "alice")
    token = issuer.token("alice", scope="openid tools:echo")
    assert "result" in call(gw, token)
    assert denial(call(gw, token, "add")) == "insufficient_scope"
    listed = gw.client.post(
        "/mcp",
        json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()["result"]["tools"]
    assert [t["name"] for t in listed] == ["echo"]
    unscoped = issuer.token("alice")  # no tools: scope at all: the key's own ACL applies
    assert "result" in call(gw, unscoped, "add")
    assert gw.balance(raw) == 8


def test_tokens_not_meant_for_this_gateway_are_refused_and_charge_nothing(gw: InProcessGateway, issuer: Issuer) -> None:
    raw = holder(gw, "bob")
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "bob"}
    unexpiring = jwt.encode(claims, issuer.keys["k1"], "RS256", headers={"kid": "k1"})
    refused = {  # with OAuth on, each is the MCP authorization spec's 401, its description saying why
        "another audience": (issuer.token("bob", aud="https://elsewhere.example"), "audience"),
        "another issuer": (issuer.token("bob", iss="https://evil.example"), "issuer"),
        "expired": (issuer.token("bob", iat=now - 900, exp=now - 600), "expired"),
        "a key the issuer never published": (issuer.token("bob", key=stranger), "Signature verification failed"),
        "an unknown subject": (issuer.token("nobody"), "alias"),
        "no expiry": (unexpiring, '"exp"'),
        "not a JWT at all": ("eyJhbGciOi.garbage", "token"),
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}
    for what, (token, why) in refused.items():
        answer = gw.client.post("/mcp", json=body, headers={"Authorization": f"Bearer {token}"})
        challenge = answer.headers.get("www-authenticate", "")
        assert answer.status_code == 401 and challenge.startswith('Bearer error="invalid_token"'), what
        assert why.lower() in challenge.lower().replace("'", '"'), (what, challenge)
    assert gw.balance(raw) == 10


def test_a_key_the_issuer_adds_later_is_fetched_when_a_token_names_it(gw: InProcessGateway, issuer: Issuer) -> None:
    raw = holder(gw, "carol")
    issuer.keys["k2"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = issuer.token("carol", kid="k2")
    wait_until(lambda: "result" in call(gw, token), 10.0, "the new signing key to be fetched")
    assert gw.balance(raw) == 9


def test_scopes_and_config_are_read_strictly() -> None:
    assert tools_of_scope("tools:echo tools:add openid") == {"echo", "add"}
    assert tools_of_scope("tools:* tools:echo") is None and tools_of_scope("openid") is None
    assert tools_of_scope(None) is None
    for bad in ({"algorithms": ["HS256"]}, {"algorithms": ["none"]}, {"issuer": "ftp://x.example"}):
        with pytest.raises(ValidationError):
            ExternalAuthConfig.model_validate({"issuer": "https://as.example", "audience": "a", **bad})


def test_the_protected_resource_metadata_names_the_external_issuer_too(gw: InProcessGateway, issuer: Issuer) -> None:
    metadata = gw.client.get("/.well-known/oauth-protected-resource").json()
    assert metadata["authorization_servers"] == [gw.url, issuer.url]
