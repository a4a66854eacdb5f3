"""Token primitives: opaque high-entropy values, their digests (what is stored), PKCE S256, scopes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

ACCESS_PREFIX = "pg_at_"
REFRESH_PREFIX = "pg_rt_"
CODE_PREFIX = "pg_ac_"
CLIENT_PREFIX = "pgc_"
SECRET_PREFIX = "pgcs_"
ALL_TOOLS = ("tools:*", "tools:write")  # either one: every tool the key may call
LIST_ONLY = "tools:read"  # list tools, call none
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 §4.1
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256 digest, unpadded
_SCOPE = re.compile(r"^tools:[A-Za-z0-9_.:/*-]{1,128}$")


def new_token(prefix: str) -> str:
    """256 random bits as hex (opaque: nothing to decode, nothing leaked)."""
    return prefix + secrets.token_hex(32)


def digest(raw: str) -> str:
    """What is stored for a token or secret: its SHA-256 (the values are random, so no salt is needed)."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def valid_challenge(challenge: str) -> bool:
    return bool(_CHALLENGE.match(challenge))


def pkce_matches(verifier: str, challenge: str) -> bool:
    """S256 only (OAuth 2.1): BASE64URL(SHA256(verifier)) == challenge, compared in constant time."""
    if not _VERIFIER.match(verifier):
        return False
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return same(computed, challenge)


def parse_scopes(raw: str | None, offered: list[str]) -> list[str] | None:
    """The scopes asked for (each offered, or `tools:<name>`), in order, without repeats; None when one
    is unknown. Nothing asked: everything offered."""
    if raw is None or not raw.strip():
        return list(offered)
    out: list[str] = []
    for scope in raw.split():
        if scope not in offered and not (_SCOPE.match(scope) and "*" not in scope):
            return None
        if scope not in out:
            out.append(scope)
    return out if len(out) <= 100 else None


def tools_of(scopes: list[str]) -> frozenset[str] | None:
    """The tools a token with these scopes may call: None for all (`tools:*`, `tools:write`), else the
    named ones (`tools:read` names none: such a token lists tools and calls none)."""
    if any(s in ALL_TOOLS for s in scopes):
        return None
    return frozenset(s.removeprefix("tools:") for s in scopes if s != LIST_ONLY)
