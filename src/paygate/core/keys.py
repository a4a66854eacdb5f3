"""API key format, hashing and masking.

Keys are `pg_` + 48 hex characters. Only their SHA-256 hash is stored; the
prefix and last four characters are kept for masked display.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "pg_"
ADMIN_KEY_PREFIX = "admin_"


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_hex(24)


def generate_admin_key() -> str:
    return ADMIN_KEY_PREFIX + secrets.token_hex(24)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def mask_key(raw: str) -> str:
    """First 7 and last 4 characters, as the reference shows keys in lists and events."""
    if len(raw) <= 11:
        return raw[:3] + "…"
    return f"{raw[:7]}…{raw[-4:]}"


def mask_parts(raw: str) -> tuple[str, str]:
    """The two parts kept at rest for masked display."""
    return raw[:7], raw[-4:]
