"""Task-augmented `tools/call` and the `tasks/*` methods (MCP 2025-11-25; the records: tasks.py).

Creation is a tools/call in every respect but the answer: the same checks (params, known tool,
backend ready), the same gate and charge (`BillingService.admit`, the group commit awaited), the same
`gate.deny` and JSON-RPC error when refused (and then no task exists). Once charged, the call runs
against the backend in a task of its own — not bound to the HTTP request — and the requester gets a
CreateTaskResult at once. When the backend answers, the task is settled exactly as a tools/call
(`Dispatcher.settle`: `refundOnFailure`, the output surcharge, one `gate.allow`), and its status is
`completed`, or `failed` for a JSON-RPC error or an `isError` result (as the spec says for tool calls).

Cancelling a working task (tasks/cancel, POST /admin/tasks, its ttl running out, the gateway stopping)
cancels the backend call (the backend tells the server) and settles it at once: refunded in full
unless `billTaskCreation` is on, in which case the creation is what is billed and a cancellation is
settled as a failed call (refunded only under `refundOnFailure`).

Every `tasks/*` request needs a valid API key and sees that key's own tasks only: another key's task
id is "not found" (-32602), as an unknown one is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from paygate.core import errors
from paygate.core.domain_errors import NotFound
from paygate.core.records import KeyRecord
from paygate.events.hub import EventHub
from paygate.mcp import jsonrpc
from paygate.mcp.call_context import CallContext
from paygate.mcp.dispatcher import Dispatcher
from paygate.mcp.gate_answers import denial_error
from paygate.mcp.jsonrpc import Message
from paygate.mcp.tasks import CANCELLED, COMPLETED, FAILED, RELATED_TASK, TERMINAL, WORKING, TaskRecord, TaskStore

log = logging.getLogger("paygate.mcp")
TOO_MANY_TASKS = -32005  # the reference's code for "over a concurrency limit"
NOT_FOUND = "Task not found"


class TaskCalls:
    def __init__(self, dispatcher: Dispatcher, store: TaskStore, events: EventHub, bill_creation: bool) -> None:
        self.d = dispatcher
        self.store = store
        self.events = events
        self.bill_creation = bill_creation

    # creation --------------------------------------------------------------
    async def create(self, msg_id: Any, params: dict[str, Any], ctx: CallContext) -> Message:
        d = self.d
        spec = params["task"]
        ttl = spec.get("ttl") if isinstance(spec, dict) else None
        if not isinstance(spec, dict) or (ttl is not None and (type(ttl) is not int or ttl < 0)):
            return jsonrpc.error(msg_id, errors.INVALID_PARAMS, "params.task must be an object, its ttl an int >= 0")
        arguments = params.get("arguments", {})

        def room() -> Message | None:  # before any charge: a key whose tasks fill its room is refused
            if d.traffic.checks_on and (refused := d.traffic.precheck(msg_id, params["name"], params, ctx)):
                return refused  # a traffic check (tool dependencies, ...) refuses the call itself
            key = d.billing.resolve(ctx.raw_key)
            return self._too_many(msg_id) if key is not None and not self.store.make_room(key.key_hash) else None

        admitted = await d.admit_call(msg_id, params, ctx, "task", room)
        if not isinstance(admitted, tuple):
            return admitted
        decision, started = admitted
        tool: str = params["name"]
        if decision.key is None:  # shadow mode lets a call without a key through: a task needs an owner
            return jsonrpc.error(msg_id, errors.INVALID_PARAMS, "A task needs an API key (its owner)")
        if not self.store.make_room(decision.key.key_hash):  # others filled the room while the charge was written
            d.settle(decision, self._too_many(msg_id), ctx, False, started)  # never reached the server: refunded
            return self._too_many(msg_id)
        record = self.store.new(
            decision.key, tool, arguments, ctx.session_id, time.time(), self.store.ttl_for(ttl), decision.charged
        )
        # The background call has no request to relay server messages to, nor one a client can cancel.
        record.ctx = CallContext(ctx.raw_key, ctx.request_id, key=decision.key, client=ctx.client, session_id=None)
        record.admitted, record.started = decision, started
        forwarded = {k: v for k, v in params.items() if k != "task"}
        record.runner = asyncio.get_running_loop().create_task(self._run(record, forwarded))
        return jsonrpc.result(msg_id, {"task": record.view()})

    def _too_many(self, msg_id: Any) -> Message:
        s = self.store
        return jsonrpc.error(
            msg_id,
            TOO_MANY_TASKS,
            "Too many tasks: wait for some to finish (or cancel some) first",
            {"reason": "too_many_tasks", "maxTasksPerKey": s.max_per_key, "maxTasks": s.max_tasks},
        )

    async def _run(self, record: TaskRecord, params: dict[str, Any]) -> None:
        try:
            reply, delivered = await self.d.forward(record.task_id, "tools/call", params, record.ctx)
        except asyncio.CancelledError:
            if record.status in TERMINAL:  # our own cancel(): already settled
                return
            raise
        if record.status in TERMINAL:  # cancelled while the answer was on its way: settled then
            return
        record.charged = self.d.settle(record.admitted, reply, record.ctx, delivered, record.started)
        status = FAILED if jsonrpc.is_failure(reply) else COMPLETED
        message = reply["error"].get("message") if "error" in reply else None
        self.store.finish(record, status, reply, time.time(), message)

    # cancellation ----------------------------------------------------------
    def cancel(self, record: TaskRecord, why: str, actor: str) -> bool:
        """Cancel a working task and settle its charge now; False when it had already finished."""
        if record.status in TERMINAL:
            return False
        reply = jsonrpc.error(record.task_id, errors.REQUEST_CANCELLED, why)
        self.store.finish(record, CANCELLED, reply, time.time(), why)
        if record.runner is not None:
            record.runner.cancel()
        # Not delivered (refunded whatever the refund policy) unless the creation itself is billed.
        record.charged = self.d.settle(record.admitted, reply, record.ctx, self.bill_creation, record.started)
        owner: KeyRecord = record.owner
        self.events.emit(
            "task.cancelled",
            actor,
            {"taskId": record.task_id, "tool": record.tool, "keyMasked": owner.masked, "reason": why},
            key_hash=owner.key_hash,
        )
        return True

    def tick(self, now: float) -> None:
        """Sweep tasks past their ttl (a working one is cancelled first)."""
        for record in self.store.expired(now):
            self.cancel(record, "Task expired (its ttl ran out)", "system")
            self.store.remove(record)

    async def stop(self) -> None:
        """At shutdown: cancel what still runs (settled before the store closes)."""
        runners = [r.runner for r in self.store if r.status == WORKING and r.runner is not None]
        for record in self.store:
            self.cancel(record, "The gateway stopped", "system")
        if runners:
            await asyncio.wait(runners, timeout=5.0)

    # tasks/* ---------------------------------------------------------------
    async def handle(self, method: str, msg_id: Any, params: Any, ctx: CallContext) -> Message:
        d = self.d
        denial = d.billing.check_access(ctx.raw_key, ctx.client)
        key = d.billing.resolve(ctx.raw_key)
        if denial is not None or key is None:
            if denial is None:
                return jsonrpc.error(msg_id, errors.INVALID_PARAMS, "tasks/* need an API key (they show its own tasks)")
            return denial_error(msg_id, denial.reason, denial.text, {})
        ctx.key, ctx.credits = key, key.credits
        params = params if isinstance(params, dict) else {}
        if method == "tasks/list":
            mine = [t for t in self.store if self._owns(key, t)]
            try:
                page, cursor = self.store.page(mine, params.get("cursor"))
            except ValueError:
                return jsonrpc.error(msg_id, errors.INVALID_PARAMS, "Invalid cursor")
            listed: dict[str, Any] = {"tasks": [t.view() for t in page]}
            if cursor is not None:
                listed["nextCursor"] = cursor
            return jsonrpc.result(msg_id, listed)
        record = self.store.get(params.get("taskId"))
        if record is None or not self._owns(key, record):
            return jsonrpc.error(msg_id, errors.INVALID_PARAMS, NOT_FOUND, {"taskId": params.get("taskId")})
        if method == "tasks/get":
            return jsonrpc.result(msg_id, record.view())
        if method == "tasks/cancel":
            if not self.cancel(record, "Cancelled by the requester", key.masked):
                return jsonrpc.error(
                    msg_id, errors.INVALID_PARAMS, f"Cannot cancel task: already in terminal status '{record.status}'"
                )
            return jsonrpc.result(msg_id, record.view())
        await record.done.wait()  # tasks/result: until the task is terminal
        return self._payload(msg_id, record)

    @staticmethod
    def _payload(msg_id: Any, record: TaskRecord) -> Message:
        """What the original tools/call would have answered, tied to its task."""
        reply = record.reply or {}
        if "error" in reply:
            return {"jsonrpc": jsonrpc.JSONRPC, "id": msg_id, "error": reply["error"]}
        result = dict(reply.get("result") or {})
        result["_meta"] = {**(result.get("_meta") or {}), RELATED_TASK: {"taskId": record.task_id}}
        return jsonrpc.result(msg_id, result)

    def _owns(self, key: KeyRecord, record: TaskRecord) -> bool:
        owner: KeyRecord = record.owner
        return owner.key_hash == key.key_hash or self.d.billing.current(owner).key_hash == key.key_hash

    # the admin side (GET/POST /admin/tasks) ---------------------------------
    def admin_list(self, status: str | None, key_prefix: str | None, limit: int) -> dict[str, Any]:
        chosen = [
            t
            for t in reversed(list(self.store))
            if (status is None or t.status == status) and (key_prefix is None or t.owner.prefix.startswith(key_prefix))
        ]
        return {"tasks": [t.admin_view() for t in chosen[:limit]], "total": len(chosen), "stats": self.stats()}

    def admin_get(self, task_id: str) -> dict[str, Any]:
        record = self.store.get(task_id)
        if record is None:
            raise NotFound(f"Task not found: {task_id}")
        return record.admin_view()

    def admin_cancel(self, task_id: str, actor: str) -> dict[str, Any]:
        record = self.store.get(task_id)
        if record is None or not self.cancel(record, "Cancelled by an admin", actor):
            raise NotFound("Task not found or cannot be cancelled")
        return record.admin_view()

    def stats(self) -> dict[str, int]:
        counts = self.store.stats()
        # the reference's names besides the spec's: `running` is `working`; the gateway never queues (`pending`)
        return {"total": len(self.store), **counts, "running": counts[WORKING], "pending": 0}
