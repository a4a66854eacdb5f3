"""Scoped tokens: `pgt_<payload>.<signature>`, a short-lived stand-in for a key, narrowed to some tools.

The payload (base64url JSON) names the key by its hash, never its value: the reference puts the parent key
itself in the payload, where anyone holding the token can read it. The signature is HMAC-SHA256 over the
encoded payload with this gateway's token secret, so a token is checked without any stored state except
the revocation list: documents of kind `revoked_token` keyed by the token's SHA-256 fingerprint (one dict
lookup per call; shared by a Redis fleet as every document is), removed once the token would have expired.
A key's rotation ends its tokens (they name the old key's hash).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from paygate.core.domain_errors import Conflict, Invalid
from paygate.core.records import KeyRecord
from paygate.core.values import iso_time
from paygate.credentials.resolver import Credential, Rejected
from paygate.events.hub import EventHub
from paygate.store.base import Store

PREFIX = "pgt_"
REVOKED_DOC = "revoked_token"
SECRET_META = "scoped_token_secret"
DEFAULT_TTL = 3600
MAX_TTL = 86_400  # 24 h, as the reference
MAX_TOKEN_CHARS = 16_384  # longer is not one of ours: refused before any decoding
VERIFIED_CACHE = 4096  # tokens whose signature and payload were checked (the hot path skips both)
CLEANUP_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class Claims:
    key_hash: str
    issued_at: int
    expires_at: int
    tools: frozenset[str] | None
    label: str | None
    fingerprint: str


class TokenInvalid(Exception):
    """Not a token this gateway signed, or not one at all."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fingerprint_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ScopedTokens:
    """Issues, checks and revokes scoped tokens; also the `TokenKind` that turns one into its key."""

    prefix = PREFIX

    def __init__(self, store: Store, events: EventHub, secret: str | None = None) -> None:
        self.store = store
        self.events = events
        self._secret = (secret or self._stored_secret()).encode("utf-8")
        self._verified: OrderedDict[str, Claims] = OrderedDict()
        self._cleaned = 0.0

    def _stored_secret(self) -> str:
        """The secret kept in the store (made on first use), so tokens outlive restarts; of instances
        sharing a store and starting together, the first to claim it gives everyone theirs."""
        return self.store.get_meta(SECRET_META) or self.store.claim_meta(SECRET_META, secrets.token_hex(32))

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())

    # issuing ----------------------------------------------------------------------------------------------
    def issue(
        self, key: KeyRecord, ttl: int, tools: Sequence[str] | None, label: str | None, actor: str
    ) -> tuple[str, Claims]:
        if not key.active:
            raise Conflict("API key is revoked")
        if not 1 <= ttl <= MAX_TTL:
            raise Invalid(f"ttl must be between 1 and {MAX_TTL} seconds")
        now = int(time.time())
        body: dict[str, object] = {"v": 1, "kh": key.key_hash, "iat": now, "exp": now + ttl, "n": secrets.token_hex(8)}
        if tools:  # an empty list narrows nothing, as in the reference
            body["tools"] = sorted(set(tools))
        if label:
            body["label"] = label
        payload = _b64(orjson.dumps(body))
        token = f"{PREFIX}{payload}.{self._sign(payload)}"
        claims = self.claims(token)
        self.events.publish(
            "token.created",
            actor,
            keyMasked=key.masked,
            fingerprint=claims.fingerprint,
            expiresAt=iso_time(claims.expires_at),
            allowedTools=sorted(claims.tools) if claims.tools is not None else None,
            label=label,
        )
        return token, claims

    # checking ---------------------------------------------------------------------------------------------
    def claims(self, token: str) -> Claims:
        """The token's claims, if this gateway signed it (expired or not); TokenInvalid otherwise."""
        known = self._verified.get(token)
        if known is not None:
            return known
        if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_CHARS:
            raise TokenInvalid("not a scoped token")
        payload, dot, signature = token[len(PREFIX) :].partition(".")
        if not dot or not hmac.compare_digest(signature.encode("ascii", "replace"), self._sign(payload).encode()):
            raise TokenInvalid("the signature does not match")
        try:
            body = orjson.loads(_unb64(payload))
            tools = body.get("tools")
            claims = Claims(
                str(body["kh"]),
                int(body["iat"]),
                int(body["exp"]),
                frozenset(str(t) for t in tools) if tools is not None else None,
                body.get("label"),
                fingerprint_of(token),
            )
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise TokenInvalid("the payload is malformed") from exc
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_CACHE:
            self._verified.popitem(last=False)
        return claims

    def resolve(self, raw: str, now: float) -> Credential | Rejected:
        """The hot path's question (`TokenKind`): the key this token bills, or why it is refused."""
        try:
            claims = self.claims(raw)
        except TokenInvalid as exc:
            return Rejected("invalid_token", str(exc))
        if now >= claims.expires_at:
            return Rejected("token_expired", f"expired at {iso_time(claims.expires_at)}")
        if self.store.doc_peek(REVOKED_DOC, claims.fingerprint) is not None:
            return Rejected("token_revoked")
        return Credential(claims.key_hash, claims.tools, "scoped_token")

    # revoking ---------------------------------------------------------------------------------------------
    def revoke(self, token: str, reason: str | None, actor: str) -> dict[str, object]:
        """Revoke a token this gateway signed (forged strings are refused, so the list holds only real
        tokens); revoking it again answers the first revocation."""
        try:
            claims = self.claims(token)
        except TokenInvalid as exc:
            raise Invalid(f"not a scoped token of this gateway: {exc}") from exc
        existing = self.store.doc_get(REVOKED_DOC, claims.fingerprint)
        if existing is not None:
            return existing
        if time.time() >= claims.expires_at:
            raise Conflict("the token has already expired")
        entry: dict[str, object] = {
            "fingerprint": claims.fingerprint,
            "expiresAt": iso_time(claims.expires_at),
            "revokedAt": iso_time(time.time()),
            "reason": reason,
            "expires": claims.expires_at,  # for the clean-up; not shown
        }
        self.store.doc_put(REVOKED_DOC, claims.fingerprint, entry)
        self.events.publish("token.revoked", actor, fingerprint=claims.fingerprint, reason=reason)
        return entry

    def revoked(self) -> list[dict[str, object]]:
        entries = sorted(
            self.store.doc_scan(REVOKED_DOC), key=lambda e: (str(e.get("revokedAt")), str(e["fingerprint"]))
        )
        return [{k: e.get(k) for k in ("fingerprint", "expiresAt", "revokedAt", "reason")} for e in entries]

    def tick(self, now: float) -> None:
        """Drop revocations of tokens that have expired since (at most once a minute)."""
        if now - self._cleaned < CLEANUP_EVERY:
            return
        self._cleaned = now
        for entry in self.store.doc_scan(REVOKED_DOC):
            if float(entry.get("expires") or 0) <= now:
                self.store.doc_delete(REVOKED_DOC, str(entry["fingerprint"]))
