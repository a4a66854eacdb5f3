"""What a gated call answers instead of the backend: a denial as a JSON-RPC error (the reason's code,
its HTTP status and the price in `error.data`), and the wait for a charge's group commit. Shared by
tools/call, tools/call_batch, task creation, dynamic discovery and the endpoint's own checks."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from paygate.billing.outcomes import Refused
from paygate.core import errors
from paygate.core.records import KeyRecord
from paygate.mcp import jsonrpc
from paygate.mcp.jsonrpc import Message
from paygate.store.base import ChargeNotRecorded
from paygate.store.errors import ChargeRefused

log = logging.getLogger("paygate.mcp")


class _Shown(Protocol):
    credits: int | None  # the balance the answer's X-Credits-Remaining shows


def denial_error(msg_id: Any, reason: str, text: str, data: dict[str, Any]) -> Message:
    entry = errors.reason(reason)
    return jsonrpc.error(
        msg_id, entry.code, f"{entry.message} ({text})", {"reason": reason, "httpStatus": entry.http_status, **data}
    )


def refusal(msg_id: Any, refused: Refused) -> Message:
    key = refused.key
    data: dict[str, Any] = {
        "tool": refused.tool,
        "creditsRequired": refused.required,
        "creditsRemaining": key.credits if key is not None else None,
        "pricing": refused.price.public(),
    }
    if refused.rate is not None and refused.denial.reason.endswith("rate_limited"):
        data["retryAfterSeconds"] = refused.rate.reset_seconds
    if refused.denial.retry_after is not None:  # a throttle that says when to come back (budget_throttled)
        data["retryAfterSeconds"] = refused.denial.retry_after
    return denial_error(msg_id, refused.denial.reason, refused.denial.text, data)


async def recorded(
    msg_id: Any,
    committed: Awaitable[None],
    key: KeyRecord | None,
    ctx: _Shown,
    what: str,
    on_refused: Callable[[str], None],
) -> Message | None:
    """Wait for a charge's group commit: None once it is durable, else the error to answer (not charged):
    a refusal by the shared store (Redis decides every charge of a fleet; `on_refused(reason)` publishes
    the denial, as the gate's own are), or the store's failure."""
    try:
        await committed
    except ChargeRefused as exc:  # the shared store refused it: another instance spent the credits or quota
        on_refused(exc.reason)
        ctx.credits = exc.balance
        why = f"the balance is {exc.balance}" if exc.reason == "insufficient_credits" else "across every instance"
        return denial_error(msg_id, exc.reason, why, {"creditsRemaining": exc.balance})
    except ChargeNotRecorded as exc:
        ctx.credits = key.credits if key is not None else None
        log.error("%s not forwarded: %s", what, exc)
        return jsonrpc.error(msg_id, errors.INTERNAL_ERROR, "Could not record the charge; not charged")
    return None


def unknown_tool(msg_id: Any, tool: str) -> Message:
    """A call to a tool the backend does not list: -32602, with the deny table's reason for clients that
    branch on `error.data.reason` (docs/errors.md)."""
    return jsonrpc.error(msg_id, errors.INVALID_PARAMS, f"Unknown tool: {tool}", {"reason": "unknown_tool"})


def unstaged(msg_id: Any, params: Any, how: str, staged_only: Callable[[str], bool]) -> Message | None:
    """Before any charge: a call to a tool with content controls (schema, guardrails, transforms: paygate/content)
    refused on a path that does not run the call stages (batch, task, x402), rather than run unchecked."""
    tool = params.get("name") if isinstance(params, dict) else None
    if not isinstance(tool, str) or not staged_only(tool):
        return None
    text = f"{tool} has content controls that apply to plain tools/call only: not callable as {how}"
    return jsonrpc.error(msg_id, errors.INVALID_PARAMS, text, {"reason": "content_controls", "tool": tool})
