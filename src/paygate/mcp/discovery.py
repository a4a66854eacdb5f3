"""Dynamic tool discovery (`--discovery dynamic`): three meta-tools in place of the backend's whole list.

A server with hundreds of tools fills an agent's context window with their schemas. In dynamic mode
`tools/list` answers exactly three tools instead:

- `paygate_list_tools` — the real tools a page at a time (`cursor`, `limit`), with `_pricing`; free.
- `paygate_search_tools` — the real tools whose name or description holds every word of `query`; free.
- `paygate_call_tool` — `{name, arguments}`: calls the real tool `name`, gated and billed exactly as a
  `tools/call` of it (its price, its ACL, its name in the usage log and gate events).

Listing and searching show what `tools/list` would show the caller in static mode: a key's denied tools
never appear, and prices are the key's own. They are as free as `tools/list`, and need a key only when
`tools/list` does (`freeMethods`). A real tool called by name still works (the reference does not
forbid it), billed the same. The pure parts (`page`, `search`) are separate from the dispatcher hook.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from paygate.core import errors
from paygate.mcp import jsonrpc
from paygate.mcp.gate_answers import denial_error
from paygate.mcp.jsonrpc import Message

if TYPE_CHECKING:
    from paygate.mcp.call_context import CallContext
    from paygate.mcp.dispatcher import Dispatcher

LIST, SEARCH, CALL = "paygate_list_tools", "paygate_search_tools", "paygate_call_tool"
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
FREE = {"creditsPerCall": 0, "pricingModel": "flat", "rateLimitPerMin": None}

_LIMIT = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_LIMIT,
    "default": DEFAULT_LIMIT,
    "description": f"How many tools to return (1-{MAX_LIMIT}, default {DEFAULT_LIMIT})",
}
META_TOOLS: list[dict[str, Any]] = [
    {
        "name": LIST,
        "title": "List tools",
        "description": "List the tools this server offers, a page at a time, each with its description, input "
        "schema and price (_pricing.creditsPerCall). Free. Pass the answer's nextCursor as cursor "
        f"to get the next page. Call a tool with {CALL}.",
        "inputSchema": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "cursor": {"type": "string", "description": "nextCursor from the previous page; omit for the first"},
                "limit": _LIMIT,
            },
        },
        "annotations": {"readOnlyHint": True, "openWorldHint": False},
        "_pricing": FREE,
    },
    {
        "name": SEARCH,
        "title": "Search tools",
        "description": "Find tools by keywords: those whose name or description contains every word of the query "
        f"(case-insensitive), best name matches first, with schema and price. Free. Call one with {CALL}.",
        "inputSchema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["query"],
            "properties": {
                "query": {"type": "string", "minLength": 1, "description": 'Keywords, e.g. "read file"'},
                "limit": _LIMIT,
            },
        },
        "annotations": {"readOnlyHint": True, "openWorldHint": False},
        "_pricing": FREE,
    },
    {
        "name": CALL,
        "title": "Call a tool",
        "description": f"Call one of the tools found with {LIST} or {SEARCH} by its name, with its arguments. "
        "Billed as that tool: its _pricing applies.",
        "inputSchema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "description": "The tool's name"},
                "arguments": {"type": "object", "description": "The tool's arguments, as its inputSchema describes"},
            },
        },
    },
]


class BadArguments(ValueError):
    """A meta-tool's arguments do not fit its inputSchema (-32602)."""


def page(tools: Sequence[dict[str, Any]], cursor: Any, limit: int) -> dict[str, Any]:
    """One page of `tools` from `cursor` (the offset, opaque to clients): {tools, total, nextCursor?}."""
    if cursor is None:
        start = 0
    elif isinstance(cursor, str) and cursor.isdigit() and len(cursor) <= 9:
        start = int(cursor)
    else:
        raise BadArguments(f"{LIST}: cursor must be a nextCursor this tool returned")
    out: dict[str, Any] = {"tools": list(tools[start : start + limit]), "total": len(tools)}
    if start + limit < len(tools):
        out["nextCursor"] = str(start + limit)
    return out


def search(tools: Sequence[dict[str, Any]], query: str, limit: int) -> dict[str, Any]:
    """The tools whose name or description holds every word of `query` (case-insensitive), those with
    more of the words in their name first, otherwise in list order: {tools, total}."""
    words = query.lower().split()
    if not words:
        raise BadArguments(f"{SEARCH}: query needs at least one word")
    ranked = []
    for order, tool in enumerate(tools):
        name = str(tool.get("name", "")).lower()
        text = f"{name} {tool.get('title') or ''} {tool.get('description') or ''}".lower()
        if all(w in text for w in words):
            ranked.append((-sum(w in name for w in words), order, tool))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return {"tools": [tool for _, _, tool in ranked[:limit]], "total": len(ranked)}


def limit_of(arguments: dict[str, Any], tool: str) -> int:
    limit = arguments.get("limit", DEFAULT_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise BadArguments(f"{tool}: limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


def tool_result(payload: dict[str, Any]) -> dict[str, Any]:
    """A tools/call result carrying `payload` as JSON text and as structured content."""
    return {"content": [{"type": "text", "text": orjson.dumps(payload).decode()}], "structuredContent": payload}


class DynamicDiscovery:
    """The dispatcher's `tools/list` and `tools/call` in dynamic mode."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher

    @staticmethod
    def tools() -> list[dict[str, Any]]:
        return META_TOOLS

    async def tools_call(self, msg_id: Any, params: Any, ctx: CallContext) -> Message:
        name = params.get("name") if isinstance(params, dict) else None
        if name not in (LIST, SEARCH, CALL):
            return await self.d.tools_call(msg_id, params, ctx)  # a real tool by its own name
        arguments = params.get("arguments", {})
        try:
            if not isinstance(arguments, dict):
                raise BadArguments(f"{name}: arguments must be an object")
            if name == CALL:
                return await self.d.tools_call(msg_id, self._real_call(params, arguments), ctx)
            return self._browse(msg_id, name, arguments, ctx)
        except BadArguments as exc:
            return jsonrpc.error(msg_id, errors.INVALID_PARAMS, str(exc))

    def _browse(self, msg_id: Any, name: str, arguments: dict[str, Any], ctx: CallContext) -> Message:
        if "tools/list" not in self.d.free_methods:  # as free as tools/list, and as open
            denial = self.d.billing.check_access(ctx.raw_key, ctx.client)
            if denial is not None:
                return denial_error(msg_id, denial.reason, denial.text, {})
        limit = limit_of(arguments, name)
        visible = self.d.tools_for(ctx.raw_key)
        if name == LIST:
            return jsonrpc.result(msg_id, tool_result(page(visible, arguments.get("cursor"), limit)))
        query = arguments.get("query")
        if not isinstance(query, str):
            raise BadArguments(f"{SEARCH}: query must be a string")
        return jsonrpc.result(msg_id, tool_result(search(visible, query, limit)))

    @staticmethod
    def _real_call(params: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        """The `tools/call` params of the real call a `paygate_call_tool` stands for."""
        name, inner = arguments.get("name"), arguments.get("arguments", {})
        if not isinstance(name, str) or not name:
            raise BadArguments(f"{CALL}: arguments.name must be a tool's name")
        if not isinstance(inner, dict):
            raise BadArguments(f"{CALL}: arguments.arguments must be an object")
        real: dict[str, Any] = {"name": name, "arguments": inner}
        if "_meta" in params:  # e.g. a progressToken: the real call reports progress as the client asked
            real["_meta"] = params["_meta"]
        return real
