"""The global access rules' checks on /mcp (policy/ip_access.py, policy/signing.py), run by the endpoint
before a request's body is parsed: each returns the JSON-RPC error to answer with, or None."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from paygate.asgi import Scope, api_key_from
from paygate.core import errors
from paygate.core.netaddr import client_ip
from paygate.mcp import jsonrpc

if TYPE_CHECKING:
    from paygate.mcp.endpoint import McpEndpoint
    from paygate.policy.ip_access import IpAccess


def client_address(scope: Scope, trusted_proxies: tuple[str, ...]) -> str | None:
    """The client's address: the socket peer, or X-Forwarded-For past trusted proxies (core/netaddr.py)."""
    client = scope.get("client")
    forwarded = None
    if trusted_proxies:
        raw = next((v for k, v in scope["headers"] if k == b"x-forwarded-for"), None)
        forwarded = raw.decode("latin-1") if raw is not None else None
    return client_ip(client[0] if client else None, forwarded, trusted_proxies)


def address_refusal(access: IpAccess, address: str | None) -> dict[str, Any] | None:
    """403 `ip_blocked` for an address the IP rules refuse."""
    why = access.refusal(address)
    if why is None:
        return None
    reason = errors.reason("ip_blocked")
    return jsonrpc.error(None, reason.code, why, {"reason": reason.name, "httpStatus": reason.http_status})


def signature_refusal(
    endpoint: McpEndpoint, scope: Scope, headers: dict[bytes, bytes], body: bytes
) -> dict[str, Any] | None:
    """401 `invalid_signature` for a signing key's POST whose X-Signature is missing or wrong. The key is
    resolved as the gate would (a scoped or OAuth token of the key must sign too)."""
    signing = endpoint.signing
    assert signing is not None
    key = endpoint.dispatcher.billing.resolve(api_key_from(headers))
    if key is None:
        return None  # no such key: the gate refuses it as it would any other
    why = signing.refusal(key.key_hash, headers.get(b"x-signature"), body)
    if why is None:
        return None
    if endpoint.ip_access is not None:
        endpoint.ip_access.violation(client_address(scope, endpoint.trusted_proxies), "invalid_signature")
    reason = errors.reason("invalid_signature")
    return jsonrpc.error(None, reason.code, why, {"reason": reason.name, "httpStatus": reason.http_status})
