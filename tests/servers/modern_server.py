"""A server that speaks only the 2026-07-28 revision, for the gateway's backend-side translation.

Run: python tests/servers/modern_server.py [stdio | http PORT]

It refuses `initialize` (-32022, naming only 2026-07-28), answers `server/discover`, and refuses
any request without the envelope in `params._meta` (and, over HTTP, without routing headers that
match the body). Its `ask` tool asks the client's model through an `input_required` result and
answers once retried with `inputResponses`; `calls` says how many requests each tool got.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

VERSION = "2026-07-28"
META = "io.modelcontextprotocol/"
TOOLS = [
    {
        "name": "echo",
        "description": "Return the text",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    },
    {
        "name": "ask",
        "description": "Ask the client's model",
        "inputSchema": {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]},
    },
    {"name": "calls", "description": "Requests per tool so far", "inputSchema": {"type": "object"}},
]
CALLS: Counter[str] = Counter()


def error(msg_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": msg_id, "error": err}


def result(msg_id: Any, value: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "result": {"resultType": "complete", **value}}


def text(msg_id: Any, value: str) -> dict[str, Any]:
    return result(msg_id, {"content": [{"type": "text", "text": value}]})


def handle(message: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any] | None:
    msg_id, method = message.get("id"), message.get("method")
    if "id" not in message:
        return None
    if method == "initialize":
        return error(msg_id, -32022, "Unsupported protocol version", {"supported": [VERSION], "requested": "handshake"})
    params = message.get("params") or {}
    meta = params.get("_meta") or {}
    if meta.get(META + "protocolVersion") != VERSION or META + "clientCapabilities" not in meta:
        return error(msg_id, -32602, "params._meta lacks the 2026-07-28 envelope")
    if headers is not None and (
        headers.get("mcp-protocol-version") != VERSION
        or headers.get("mcp-method") != method
        or (method == "tools/call" and headers.get("mcp-name") != params.get("name"))
    ):
        return error(msg_id, -32020, "routing headers do not match the body")
    if method == "server/discover":
        return result(
            msg_id,
            {
                "supportedVersions": [VERSION],
                "capabilities": {"tools": {}},
                "ttlMs": 0,
                "cacheScope": "public",
                "_meta": {META + "serverInfo": {"name": "modern-only", "version": "1"}},
            },
        )
    if method == "tools/list":
        return result(msg_id, {"tools": TOOLS, "ttlMs": 0, "cacheScope": "public"})
    if method != "tools/call":
        return error(msg_id, -32601, f"Method not found: {method}")
    name, arguments = params.get("name"), params.get("arguments") or {}
    CALLS[str(name)] += 1
    if name == "echo":
        return text(msg_id, str(arguments.get("text")))
    if name == "calls":
        return text(msg_id, json.dumps(dict(CALLS), sort_keys=True))
    if name == "ask":
        answers = params.get("inputResponses") or {}
        if "model" not in answers or params.get("requestState") != "asked":
            return result(
                msg_id,
                {
                    "resultType": "input_required",
                    "requestState": "asked",
                    "inputRequests": {
                        "model": {
                            "method": "sampling/createMessage",
                            "params": {
                                "maxTokens": 20,
                                "messages": [
                                    {"role": "user", "content": {"type": "text", "text": arguments.get("prompt")}}
                                ],
                            },
                        }
                    },
                },
            )
        said = answers["model"]
        return text(msg_id, f"{said.get('model')} said: {said.get('content', {}).get('text')}")
    return error(msg_id, -32602, f"Unknown tool: {name}")


def serve_stdio() -> None:
    for line in sys.stdin:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        answer = handle(message) if isinstance(message, dict) else None
        if answer is not None:
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()


def serve_http(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def mcp(request: Request) -> Response:
        if request.method != "POST":
            return Response(status_code=405)
        answer = handle(await request.json(), {k.lower(): v for k, v in request.headers.items()})
        if answer is None:
            return Response(status_code=202)
        status = 400 if answer.get("error", {}).get("code") in (-32022, -32020, -32602) else 200
        return JSONResponse(answer, status_code=status)

    app = Starlette(routes=[Route("/mcp", mcp, methods=["GET", "POST", "DELETE"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        serve_http(int(sys.argv[2]))
    else:
        serve_stdio()
