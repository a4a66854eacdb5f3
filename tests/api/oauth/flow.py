"""The OAuth flow as a test client walks it: register, consent (GET the page, POST the form), token."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

REDIRECT = "http://127.0.0.1:9/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def form_fields(html: str) -> dict[str, str]:
    return {
        unescape(n): unescape(v) for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)
    }


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Flow:
    url: str  # the gateway's base URL
    client: httpx.Client  # keeps the consent page's cookie

    def register(self, **extra: Any) -> dict[str, Any]:
        body = {"client_name": "Test agent", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", **extra}
        r = self.client.post(f"{self.url}/oauth/register", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def authorize_params(self, client_id: str, challenge: str, **extra: str) -> dict[str, str]:
        return {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "state": "st-" + secrets.token_hex(4),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }

    def consent(self, params: dict[str, str], api_key: str | None, decision: str = "approve") -> httpx.Response:
        page = self.client.get(f"{self.url}/oauth/authorize", params=params)
        assert page.status_code == 200, page.text
        fields = form_fields(page.text) | {"decision": decision}
        if api_key is not None:
            fields["api_key"] = api_key
        return self.client.post(f"{self.url}/oauth/authorize", data=fields)

    def code(self, client_id: str, api_key: str | None, **extra: str) -> tuple[str, str]:
        """(code, verifier) for a fresh authorization."""
        verifier, challenge = pkce()
        params = self.authorize_params(client_id, challenge, **extra)
        r = self.consent(params, api_key)
        assert r.status_code == 303, r.text
        got = query_of(r.headers["location"])
        assert got["state"] == params["state"]
        return got["code"], verifier

    def token(self, **form: str) -> httpx.Response:
        return self.client.post(f"{self.url}/oauth/token", data=form)

    def exchange(self, client_id: str, code: str, verifier: str) -> httpx.Response:
        return self.token(
            grant_type="authorization_code",
            code=code,
            client_id=client_id,
            redirect_uri=REDIRECT,
            code_verifier=verifier,
        )

    def tokens(self, client_id: str, api_key: str | None) -> dict[str, Any]:
        code, verifier = self.code(client_id, api_key)
        r = self.exchange(client_id, code, verifier)
        assert r.status_code == 200, r.text
        return dict(r.json())
