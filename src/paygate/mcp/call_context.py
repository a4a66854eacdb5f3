"""The facts of one HTTP request to /mcp that its messages share: in (the key, the client, the session),
and out (what the response headers report)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paygate.billing.facts import NO_CLIENT, ClientFacts
from paygate.core import errors
from paygate.core.ratelimit import RateDecision
from paygate.core.records import KeyRecord
from paygate.mcp import jsonrpc
from paygate.mcp.jsonrpc import Message
from paygate.mcp.origin import Origin


@dataclass(slots=True)
class CallContext:
    """Per-HTTP-request facts in, and facts for the response headers out."""

    raw_key: str | None
    request_id: str
    rate: RateDecision | None = None
    credits: int | None = None
    surcharge: int = 0
    key: KeyRecord | None = None  # resolved once by a tools/call, reused for the response headers
    client: ClientFacts = NO_CLIENT  # peer address and headers, read only when a key's policy needs them
    session_id: str | None = None  # the client's Mcp-Session-Id, when it has one
    origin: Origin | None = None  # the POST these messages came in (server messages find their way back)
    cancelled: set[Any] | None = None  # ids the client cancelled: the spec says they get no answer
    payment_response: bytes | None = None  # an x402 settlement's receipt, for X-PAYMENT-RESPONSE
    headers_out: list[tuple[bytes, bytes]] | None = None  # set by traffic controls (paygate/traffic)

    def cancelled_by_client(self, msg_id: Any) -> Message:
        """Settle as a cancellation (-32800); the endpoint sends the client no answer for it."""
        if self.cancelled is None:
            self.cancelled = set()
        self.cancelled.add(msg_id)
        return jsonrpc.error(msg_id, errors.REQUEST_CANCELLED, "Request cancelled by the client")

    def add_header(self, name: bytes, value: bytes) -> None:
        """A response header a traffic control sets (X-Cache, Retry-After, Deprecation, ...): the last
        value set for a name wins, so a batch of calls never repeats one."""
        out = self.headers_out
        if out is None:
            self.headers_out = [(name, value)]
            return
        for i, (have, _) in enumerate(out):
            if have == name:
                out[i] = (name, value)
                return
        out.append((name, value))
