"""Request signing: keys that must sign each POST /mcp with an HMAC-SHA256 shared secret.

A key given a signing secret (POST /admin/signing) must send, with every POST to /mcp,

    X-Signature: t=<unix seconds>,n=<nonce>,s=<hex HMAC-SHA256(secret, "<t>.<n>." + body)>

where `body` is the exact request body bytes. The gateway refuses (401, `invalid_signature`) a missing
or malformed header, a timestamp further than `toleranceSeconds` from its clock, a nonce this instance
has already seen within that window (a replay), or a wrong signature (compared in constant time),
before the body is parsed and before any gate or charge. Keys without a secret are not affected.

Rotation gives a new secret and keeps the previous one valid for `graceSeconds`, so clients can switch
without a failed call. The secrets are shared secrets (the gateway must compute the same HMAC), so they
are stored as given, like webhook secrets, and shown only once, when made; listings never show them.
Stored as one JSON blob in the store's meta (`policy.signing`); a Redis fleet's peers re-read it every
few seconds. Nonces are remembered per instance: behind a load balancer without session affinity, a
replay to another instance within the tolerance window is not detected (docs/access-rules.md).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.core.domain_errors import NotFound
from paygate.core.records import KeyRecord
from paygate.events.hub import EventHub
from paygate.store.base import Store
from paygate.store.meta_doc import MetaDoc

log = logging.getLogger("paygate.policy")

META_SIGNING = "policy.signing"
DEFAULT_TOLERANCE = 300
MAX_NONCES = 100_000  # remembered at once; the oldest are forgotten first (they are the first to go stale)
MAX_NONCE_LENGTH = 128


class Signing:
    """The keys' secrets, the check the endpoint runs, and the admin operations."""

    def __init__(self, store: Store, events: EventHub, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.events = events
        self.clock = clock
        self.tolerance = DEFAULT_TOLERANCE
        self.keys: dict[str, dict[str, Any]] = {}  # key hash -> {secret, previous, previousUntil, ...}
        self.verified = 0
        self.rejected = 0
        self._nonces: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.doc = MetaDoc(store, META_SIGNING)

    # --- the check (mcp/endpoint.py) -------------------------------------------------------------------
    def refusal(self, key_hash: str, header: bytes | None, body: bytes) -> str | None:
        """Why this request of a signing key is refused (a sentence for the client), or None."""
        entry = self.keys.get(key_hash)
        if entry is None:
            return None
        why = self._check(key_hash, entry, header, body)
        if why is None:
            self.verified += 1
        else:
            self.rejected += 1
        return why

    def _check(self, key_hash: str, entry: dict[str, Any], header: bytes | None, body: bytes) -> str | None:
        if header is None:
            return "This key must sign its requests (X-Signature: t=…,n=…,s=…)"
        parts = _parse(header)
        if parts is None:
            return "X-Signature must be t=<unix seconds>,n=<nonce>,s=<hex HMAC-SHA256>"
        stamp, nonce, signature = parts
        now = self.clock()
        if abs(now - stamp) > self.tolerance:
            return f"X-Signature timestamp is more than {self.tolerance} s from the server's clock"
        message = f"{stamp}.{nonce}.".encode() + body
        candidates = [entry["secret"]]
        if entry.get("previous") and float(entry.get("previousUntil") or 0) > now:
            candidates.append(entry["previous"])
        # every candidate is computed and compared, so the time taken says nothing about which one matched
        matched = False
        for secret in candidates:
            expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
            matched |= hmac.compare_digest(expected, signature)
        if not matched:
            return "X-Signature does not match the request"
        seen = (key_hash, nonce)
        if seen in self._nonces and self._nonces[seen] > now - self.tolerance:
            return "X-Signature nonce was already used (a replay)"
        self._nonces[seen] = now
        self._nonces.move_to_end(seen)
        while len(self._nonces) > MAX_NONCES:
            self._nonces.popitem(last=False)
        return None

    # --- admin ---------------------------------------------------------------------------------------
    def issue(self, key: KeyRecord, actor: str, grace_seconds: int) -> dict[str, Any]:
        """A new secret for the key (shown once); a key that had one keeps it valid for `grace_seconds`."""
        now = self.clock()
        secret = "pgs_" + secrets.token_hex(32)
        old = self.keys.get(key.key_hash)
        entry: dict[str, Any] = {"secret": secret, "keyMasked": key.masked, "createdAt": now}
        if old is not None:
            entry["createdAt"] = old["createdAt"]
            entry["rotatedAt"] = now
            if grace_seconds > 0:
                entry["previous"] = old["secret"]
                entry["previousUntil"] = now + grace_seconds
        self._save({**self.keys, key.key_hash: entry}, self.tolerance)
        event = "signing.rotated" if old is not None else "signing.enabled"
        self.events.publish(event, actor, keyMasked=key.masked, graceSeconds=grace_seconds if old else 0)
        return {**self._view(entry), "secret": secret}

    def revoke(self, key: KeyRecord, actor: str) -> None:
        if key.key_hash not in self.keys:
            raise NotFound("This key has no signing secret")
        self._save({k: v for k, v in self.keys.items() if k != key.key_hash}, self.tolerance)
        self.events.publish("signing.disabled", actor, keyMasked=key.masked)

    def set_tolerance(self, seconds: int, actor: str) -> None:
        self._save(self.keys, seconds)
        self.events.publish("signing.configured", actor, toleranceSeconds=seconds)

    def view(self) -> dict[str, Any]:
        keys = [self._view(e) for e in sorted(self.keys.values(), key=lambda e: e["createdAt"])]
        return {
            "toleranceSeconds": self.tolerance,
            "keys": keys,
            "count": len(keys),
            "stats": {"verified": self.verified, "rejected": self.rejected, "noncesRemembered": len(self._nonces)},
        }

    def _view(self, entry: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        until = entry.get("previousUntil")
        return {
            "keyMasked": entry["keyMasked"],
            "createdAt": _iso(entry["createdAt"]),
            "rotatedAt": _iso(entry["rotatedAt"]) if entry.get("rotatedAt") else None,
            "previousValidUntil": _iso(until) if until and until > now else None,
        }

    # --- state ---------------------------------------------------------------------------------------
    def _save(self, keys: dict[str, dict[str, Any]], tolerance: int) -> None:
        self.doc.write({"toleranceSeconds": tolerance, "keys": keys})  # first: if the write fails nothing changed
        self.keys, self.tolerance = keys, tolerance

    def reload(self, _now: float = 0.0) -> None:
        """Read the stored secrets again if they changed (start-up; a fleet peer's change, on a ticker)."""
        parsed = self.doc.read(_parse_secrets, "signing secrets")
        if parsed is not None:
            self.keys, self.tolerance = parsed


def _parse_secrets(doc: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], int]:
    keys = {str(k): dict(v) for k, v in (doc.get("keys") or {}).items() if isinstance(v.get("secret"), str)}
    return keys, int(doc.get("toleranceSeconds", DEFAULT_TOLERANCE))


def _parse(header: bytes) -> tuple[int, str, str] | None:
    """`t=…,n=…,s=…` in any order, each once; None when malformed."""
    try:
        text = header.decode("ascii")
    except UnicodeDecodeError:
        return None
    fields: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name in fields or name not in ("t", "n", "s"):
            return None
        fields[name] = value
    if set(fields) != {"t", "n", "s"} or not fields["t"].isdigit() or len(fields["t"]) > 12:
        return None
    nonce, signature = fields["n"], fields["s"].lower()
    if not 8 <= len(nonce) <= MAX_NONCE_LENGTH or len(signature) != 64:
        return None
    return int(fields["t"]), nonce, signature


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def sign(secret: str, body: bytes, stamp: int | None = None, nonce: str | None = None) -> str:
    """The X-Signature value for `body` (what a client computes; used by the docs' example and the tests)."""
    t = int(time.time()) if stamp is None else stamp
    n = nonce or secrets.token_hex(16)
    s = hmac.new(secret.encode(), f"{t}.{n}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},n={n},s={s}"


class SigningCollector(Collector):
    """`paygate_signed_requests_total{outcome}` and `paygate_signing_keys`."""

    def __init__(self, signing: Signing) -> None:
        self.signing = signing

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "paygate_signed_requests", "POST /mcp requests of signing keys, by outcome", labels=["outcome"]
        )
        family.add_metric(["verified"], self.signing.verified)
        family.add_metric(["rejected"], self.signing.rejected)
        yield family
        yield GaugeMetricFamily(
            "paygate_signing_keys", "keys that must sign their requests", value=len(self.signing.keys)
        )
