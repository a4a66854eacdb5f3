"""What a webhook route's fields must be (event types, key prefixes, a URL safe to call), and the refusals
the webhook routes answer with."""

from __future__ import annotations

import re

from paygate.core.domain_errors import Conflict, DomainError, Invalid, NotFound
from paygate.webhooks.ssrf import UnsafeUrl, check_url

MAX_EVENTS = 100
MAX_PREFIXES = 50
PREFIX_KEPT = 7  # characters of a key kept at rest (core/keys.mask_parts)
_EVENT_TYPE = re.compile(r"^(\*|[A-Za-z0-9_.:-]{1,64})$")
_PREFIX = re.compile(r"^[!-~]{1,7}$")  # printable ASCII, no space


class WebhookError(DomainError):
    """A webhook change refused (nothing changed); the subclass says which kind."""


class WebhookInvalid(WebhookError, Invalid):
    pass


class WebhookNotFound(WebhookError, NotFound):
    pass


class WebhookConflict(WebhookError, Conflict):
    pass


def clean_events(events: list[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(e.strip() for e in events))
    if not names or len(names) > MAX_EVENTS:
        raise WebhookInvalid(f'Invalid request: events must list 1 to {MAX_EVENTS} event types (or "*")')
    bad = next((e for e in names if not _EVENT_TYPE.match(e)), None)
    if bad is not None:
        raise WebhookInvalid(f"Invalid request: events: {bad[:64]!r} is not an event type")
    return names


def clean_prefixes(prefixes: list[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(prefixes))
    if len(out) > MAX_PREFIXES:
        raise WebhookInvalid(f"Invalid request: keyPrefixes lists at most {MAX_PREFIXES} prefixes")
    bad = next((p for p in out if not _PREFIX.match(p)), None)
    if bad is not None:
        raise WebhookInvalid(
            f"Invalid request: keyPrefixes: {bad[:20]!r} must be 1 to {PREFIX_KEPT} "
            f"printable characters (only a key's first {PREFIX_KEPT} are kept)"
        )
    return out


def clean_url(url: str, allow_private: bool) -> str:
    try:
        check_url(url, allow_private)
    except UnsafeUrl as exc:
        raise WebhookInvalid(f"Invalid request: {exc}") from exc
    return url
