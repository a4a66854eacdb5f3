"""An MCP client on the official `mcp` Python SDK 1.x, driving server-everything through the gateway.

Runs in its own venv (`.venv-mcp1`, made by scripts/test): 1.x and the 2.x the project uses cannot
share one. Usage: mcp1_client.py PLAN_JSON, where the plan (tests/e2e/test_sdk_clients.py) names the
gateway's URL, an API key, the tools, their arguments and what to answer. Prints one JSON report.

Over Streamable HTTP with `X-API-Key`, it does what the TypeScript client (ts_client.mjs) does:
sampling, elicitation, progress, cancellation. One difference is 1.x's own: cancelling the caller
does not tell the other side (2.x and the TypeScript SDK send `notifications/cancelled`), so this
client sends `notifications/cancelled` itself, naming the id its session gave the request.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from typing import Any

import anyio
import httpx
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.context import RequestContext
from mcp.shared.exceptions import McpError


def texts(result: types.CallToolResult) -> list[str]:
    return [c.text for c in result.content if isinstance(c, types.TextContent)]


class Answers:
    """The client's model and user: answer from the plan, record what the server asked."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.sampled: list[dict[str, Any]] = []
        self.elicited: list[dict[str, Any]] = []

    async def sample(
        self, context: RequestContext[ClientSession, Any], params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        first = params.messages[0].content
        self.sampled.append(
            {
                "text": first.text if isinstance(first, types.TextContent) else None,
                "systemPrompt": params.systemPrompt,
                "maxTokens": params.maxTokens,
            }
        )
        answer = self.plan["sampling"]["answer"]
        return types.CreateMessageResult(
            role="assistant", model=answer["model"], content=types.TextContent(type="text", text=answer["text"])
        )

    async def elicit(
        self, context: RequestContext[ClientSession, Any], params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        schema = getattr(params, "requestedSchema", {})
        self.elicited.append({"message": params.message, "required": schema.get("required")})
        return types.ElicitResult(action="accept", content=self.plan["elicitation"]["answer"])


async def cancel_midway(session: ClientSession, plan: dict[str, Any]) -> dict[str, Any]:
    """Start the long call, wait for its first progress step, then cancel it."""
    began = anyio.Event()
    outcome: dict[str, Any] = {}

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        began.set()

    async def call() -> None:
        try:
            result = await session.call_tool(
                plan["cancel"]["tool"], plan["cancel"]["arguments"], progress_callback=on_progress
            )
            outcome["result"] = texts(result)
        except McpError as exc:
            outcome["error"] = {"code": exc.error.code, "message": exc.error.message}

    request_id = session._request_id  # the id 1.x gives the next request (it numbers them itself)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(call)
        await began.wait()
        await session.send_notification(
            types.ClientNotification(
                types.CancelledNotification(
                    params=types.CancelledNotificationParams(requestId=request_id, reason="the user changed their mind")
                )
            )
        )
        # A cancelled request gets no answer (the spec's SHOULD NOT), so stop waiting for one.
        tasks.cancel_scope.cancel()
    outcome.setdefault("cancelled", True)
    return outcome


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    answers = Answers(plan)
    report: dict[str, Any] = {"client": {"name": "mcp (Python SDK)", "version": version("mcp")}}
    async with (
        httpx.AsyncClient(headers={"X-API-Key": plan["key"]}, timeout=30.0) as http,
        streamable_http_client(plan["url"], http_client=http) as (read, write, _),
        ClientSession(read, write, sampling_callback=answers.sample, elicitation_callback=answers.elicit) as session,
    ):
        with anyio.fail_after(60):
            init = await session.initialize()
            report["protocolVersion"] = init.protocolVersion

            sampled = await session.call_tool(plan["sampling"]["tool"], plan["sampling"]["arguments"])
            report["sampling"] = {"asked": answers.sampled, "result": texts(sampled), "isError": sampled.isError}

            elicited = await session.call_tool(plan["elicitation"]["tool"], {})
            report["elicitation"] = {"asked": answers.elicited, "result": texts(elicited), "isError": elicited.isError}

            seen: list[list[float | None]] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append([progress, total])

            progressed = await session.call_tool(
                plan["progress"]["tool"], plan["progress"]["arguments"], progress_callback=on_progress
            )
            report["progress"] = {"seen": seen, "result": texts(progressed)}

            report["cancellation"] = await cancel_midway(session, plan)
            after = await session.call_tool("echo", {"message": "after the cancellation"})
            report["cancellation"]["after"] = texts(after)
    return report


def main() -> None:
    plan = json.loads(sys.argv[1])
    print(json.dumps(anyio.run(run, plan)))


if __name__ == "__main__":
    main()
