"""JWT access tokens from an authorization server elsewhere: this gateway as an OAuth resource server.

A token is accepted when its signature verifies with a key of the issuer's JWKS (public-key algorithms only),
`iss` is the configured issuer, `aud` names this gateway's resource and it has not expired. It bills the key
whose alias is the value of the configured claim (`sub` by default). Scopes `tools:*` / `tools:<name>` in
its `scope` claim narrow it to those tools; a token with no `tools:` scope is not narrowed (the key's own
ACL applies). PyJWT does the JOSE work (no crypto of ours).

The issuer's metadata and keys are fetched off the hot path (at start, every `refreshSeconds`, and soon
after a token names a key id not seen yet), with the webhook SSRF rules (http/fetch.py). Checked tokens are
remembered until they expire, so a call costs a dictionary lookup, not a signature check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from paygate.config_auth import ExternalAuthConfig
from paygate.credentials.resolver import Credential, Rejected
from paygate.http.fetch import FetchError, fetch_json

log = logging.getLogger("paygate.auth")

PREFIX = "eyJ"  # base64url of '{"': every JWS in compact form starts so
CHECKED_CACHE = 4096
MISSING_KID_REFETCH = 60.0  # at most this often when tokens name key ids the JWKS lacks
LEEWAY = 30  # seconds of clock skew allowed on exp / nbf / iat
METADATA_PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


@dataclass(frozen=True, slots=True)
class _Checked:
    key_alias: str
    tools: frozenset[str] | None
    expires_at: float


def tools_of_scope(scope: object) -> frozenset[str] | None:
    """`tools:*` → every tool (None), `tools:<name>` → those tools; no `tools:` scope at all → None."""
    words = scope.split() if isinstance(scope, str) else []
    named = [w.removeprefix("tools:") for w in words if w.startswith("tools:")]
    if not named or "*" in named:
        return None
    return frozenset(named)


class ExternalTokens:
    """The `TokenKind` for JWTs of the configured issuer."""

    prefix = PREFIX

    def __init__(self, config: ExternalAuthConfig, key_of_alias: Callable[[str], str | None]) -> None:
        self.config = config
        self.key_of_alias = key_of_alias  # an alias → the hash of the key that has it, or None
        self.jwks: jwt.PyJWKSet | None = None
        self.loaded_at = 0.0
        self._checked: OrderedDict[str, _Checked] = OrderedDict()
        self._fetching: asyncio.Task[None] | None = None
        self._missing_kid_at = 0.0

    # keys -------------------------------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Fetch the issuer's keys now (its metadata first, unless `jwksUrl` is set); failures are logged
        and the keys held so far kept."""
        cfg = self.config
        try:
            url = cfg.jwks_url or await self._jwks_uri()
            document = await fetch_json(url, allow_private=cfg.allow_private)
            self.jwks = jwt.PyJWKSet.from_dict(document)
            self.loaded_at = time.time()
            self._checked.clear()  # a key the issuer withdrew vouches for nothing from now on
        except (FetchError, jwt.PyJWKSetError, jwt.InvalidKeyError, TypeError, ValueError) as exc:
            log.warning("external authorization server %s: could not load its keys: %s", cfg.issuer, exc)

    async def _jwks_uri(self) -> str:
        base = self.config.issuer.rstrip("/")
        last: Exception | None = None
        for path in METADATA_PATHS:
            try:
                metadata = await fetch_json(base + path, allow_private=self.config.allow_private)
            except FetchError as exc:
                last = exc
                continue
            if isinstance(metadata, dict) and isinstance(metadata.get("jwks_uri"), str):
                if metadata.get("issuer") not in (None, self.config.issuer):
                    raise FetchError(f"its metadata names another issuer: {metadata.get('issuer')!r}")
                return str(metadata["jwks_uri"])
        raise FetchError(f"no metadata with a jwks_uri ({last})")

    def tick(self, now: float) -> None:
        """Each second (the runtime's tickers): fetch the keys again when they are due."""
        if now - self.loaded_at >= self.config.refresh_seconds:
            self.loaded_at = now  # a failed fetch is tried again a period later, not every second
            self._fetch_soon()

    def _fetch_soon(self) -> None:
        if self._fetching is not None and not self._fetching.done():
            return
        with contextlib.suppress(RuntimeError):  # no loop (a synchronous caller): the next tick fetches
            self._fetching = asyncio.get_running_loop().create_task(self.refresh())

    # the hot path -----------------------------------------------------------------------------------------
    def resolve(self, raw: str, now: float) -> Credential | Rejected:
        checked = self._checked.get(raw)
        if checked is None:
            found = self._check(raw)
            if isinstance(found, Rejected):
                return found
            checked = found
        if now >= checked.expires_at + LEEWAY:
            return Rejected("token_expired", "the access token has expired", bearer=True)
        key_hash = self.key_of_alias(checked.key_alias)
        if key_hash is None:
            return Rejected("invalid_token", f"no API key has the alias of the token's {self.config.key_claim}", True)
        return Credential(key_hash, checked.tools, "oauth")

    def _check(self, raw: str) -> _Checked | Rejected:
        jwks = self.jwks
        try:
            kid = jwt.get_unverified_header(raw).get("kid")
            signing = self._key(jwks, kid)
            if signing is None:
                return Rejected("invalid_token", "signed by a key the issuer does not publish (yet)", bearer=True)
            claims: dict[str, Any] = jwt.decode(
                raw,
                signing.key,
                algorithms=self.config.algorithms,
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            return Rejected("token_expired", "the access token has expired", bearer=True)
        except jwt.InvalidTokenError as exc:
            return Rejected("invalid_token", str(exc)[:200], bearer=True)
        alias = claims.get(self.config.key_claim)
        if not isinstance(alias, str) or not alias:
            return Rejected("invalid_token", f"the token has no {self.config.key_claim} claim", bearer=True)
        checked = _Checked(alias, tools_of_scope(claims.get("scope")), float(claims["exp"]))
        self._checked[raw] = checked
        if len(self._checked) > CHECKED_CACHE:
            self._checked.popitem(last=False)
        return checked

    def _key(self, jwks: jwt.PyJWKSet | None, kid: object) -> jwt.PyJWK | None:
        """The issuer's key `kid` names (the only key, when the token names none); a kid not seen yet asks
        for the keys again, at most once a minute (the issuer may have rotated)."""
        keys = jwks.keys if jwks is not None else []
        for key in keys:
            if (kid is None and len(keys) == 1) or (kid is not None and key.key_id == kid):
                return key
        now = time.monotonic()
        if now - self._missing_kid_at >= MISSING_KID_REFETCH:
            self._missing_kid_at = now
            self._fetch_soon()
        return None
