"""MCP tasks (protocol 2025-11-25, experimental): the records and their bounded, in-memory store.

A `tools/call` that carries `params.task` is run by the gateway itself as a task (task_calls.py): it is
gated and charged at once, answered with a CreateTaskResult, and the call runs against the backend in
the background; the requester polls `tasks/get`, fetches `tasks/result`, lists `tasks/list`, cancels
`tasks/cancel`. The shapes are the spec's (schema 2025-11-25, `Task`, `CreateTaskResult`,
`ListTasksResult`; the `mcp_types` package carries them as `_types.Task` etc.).

Tasks live in this process's memory only: a restart loses them (a task whose process died is gone).
The store is bounded: at most `max_tasks` in all and `max_per_key` per key (the oldest finished ones
make room; when all are still working, a new one is refused), and each is kept `ttl` ms from its
creation (requested per task, capped), then swept.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from paygate.core.values import iso_time

TASK_METHODS = frozenset({"tasks/get", "tasks/result", "tasks/list", "tasks/cancel"})
WORKING, COMPLETED, FAILED, CANCELLED = "working", "completed", "failed", "cancelled"
STATUSES = (WORKING, "input_required", COMPLETED, FAILED, CANCELLED)
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
RELATED_TASK = "io.modelcontextprotocol/related-task"  # the _meta key tying a result to its task
POLL_INTERVAL_MS = 1000  # what the gateway suggests between two tasks/get
PAGE_SIZE = 50  # tasks per tasks/list page


def offer_tasks(tool: dict[str, Any]) -> dict[str, Any]:
    """A tools/list entry that tells 2025-11-25 clients they may call the tool as a task (`taskSupport`
    absent means "forbidden"): the gateway runs tasks itself, whatever the backend supports. A tool that
    declares "optional" or "required" keeps its declaration."""
    execution = tool.get("execution")
    own = execution if isinstance(execution, dict) else {}
    if own.get("taskSupport") in ("optional", "required"):
        return tool
    return {**tool, "execution": {**own, "taskSupport": "optional"}}


class TaskHandler(Protocol):
    """What the dispatcher hands task traffic to (task_calls.TaskCalls)."""

    def create(self, msg_id: Any, params: dict[str, Any], ctx: Any) -> Awaitable[dict[str, Any]]: ...

    def handle(self, method: str, msg_id: Any, params: Any, ctx: Any) -> Awaitable[dict[str, Any]]: ...


@dataclass(slots=True, eq=False)
class TaskRecord:
    task_id: str
    seq: int  # creation order: the tasks/list cursor
    owner: Any  # the KeyRecord that created it (its successor after a rotation still owns it)
    tool: str
    arguments: dict[str, Any]
    session_id: str | None
    created: float
    ttl_ms: int
    charged: int
    status: str = WORKING
    status_message: str | None = None
    updated: float = 0.0
    finished: float | None = None
    reply: dict[str, Any] | None = None  # the backend's answer (or the gateway's error) once terminal
    admitted: Any = None  # the gate's Admitted (billing), settled once
    ctx: Any = None  # the CallContext the background call runs with
    started: float = 0.0  # perf_counter at the gate (gate.allow's durationMs)
    runner: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def expires(self) -> float:
        return self.created + self.ttl_ms / 1000

    def view(self) -> dict[str, Any]:
        """The spec's `Task`."""
        out: dict[str, Any] = {
            "taskId": self.task_id,
            "status": self.status,
            "createdAt": iso_time(self.created),
            "lastUpdatedAt": iso_time(self.updated or self.created),
            "ttl": self.ttl_ms,
            "pollInterval": POLL_INTERVAL_MS,
        }
        if self.status_message is not None:
            out["statusMessage"] = self.status_message
        return out

    def admin_view(self) -> dict[str, Any]:
        """The reference's admin shape (GET /admin/tasks), with the spec's fields besides."""
        out: dict[str, Any] = {
            "id": self.task_id,
            "status": self.status,
            "toolName": self.tool,
            "arguments": self.arguments,
            "apiKeyPrefix": getattr(self.owner, "prefix", None),
            "keyName": getattr(self.owner, "name", None),
            "sessionId": self.session_id,
            "createdAt": iso_time(self.created),
            "creditsCharged": self.charged,
            "startedAt": iso_time(self.created),
            "lastUpdatedAt": iso_time(self.updated or self.created),
            "ttl": self.ttl_ms,
            "expiresAt": iso_time(self.expires),
        }
        if self.status_message is not None:
            out["statusMessage"] = self.status_message
        if self.finished is not None:
            out["completedAt"] = iso_time(self.finished)
            out["durationMs"] = round((self.finished - self.created) * 1000)
        if self.status in (COMPLETED, FAILED):
            out["progress"] = 100
        if self.reply is not None:
            if "result" in self.reply:
                out["result"] = self.reply["result"]
            elif "error" in self.reply:
                out["error"] = self.reply["error"]
        return out


class TaskStore:
    def __init__(self, max_tasks: int, max_per_key: int, default_ttl_ms: int, max_ttl_ms: int) -> None:
        self.max_tasks = max_tasks
        self.max_per_key = max_per_key
        self.default_ttl_ms = default_ttl_ms
        self.max_ttl_ms = max(max_ttl_ms, default_ttl_ms)
        self.page_size = PAGE_SIZE
        self._tasks: dict[str, TaskRecord] = {}  # in creation order
        self._seq = 0

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[TaskRecord]:
        return iter(list(self._tasks.values()))

    def ttl_for(self, requested: int | None) -> int:
        """The requested retention (ms), within [1 s, the maximum]; the default when none was asked."""
        if requested is None:
            return self.default_ttl_ms
        return max(1000, min(requested, self.max_ttl_ms))

    def make_room(self, owner_hash: str) -> bool:
        """Drop the oldest finished tasks until one more fits (per key and in all); False when the
        tasks in the way are all still working."""
        mine = [t for t in self._tasks.values() if t.owner.key_hash == owner_hash]
        while len(mine) >= self.max_per_key:
            oldest = next((t for t in mine if t.status in TERMINAL), None)
            if oldest is None:
                return False
            mine.remove(oldest)
            self.remove(oldest)
        while len(self._tasks) >= self.max_tasks:
            oldest = next((t for t in self._tasks.values() if t.status in TERMINAL), None)
            if oldest is None:
                return False
            self.remove(oldest)
        return True

    def new(self, owner: Any, tool: str, arguments: dict[str, Any], session_id: str | None, now: float, ttl_ms: int,
            charged: int) -> TaskRecord:  # fmt: skip
        self._seq += 1
        record = TaskRecord(
            f"task_{secrets.token_hex(12)}", self._seq, owner, tool, arguments, session_id, now, ttl_ms, charged
        )
        self._tasks[record.task_id] = record
        return record

    def get(self, task_id: Any) -> TaskRecord | None:
        return self._tasks.get(task_id) if isinstance(task_id, str) else None

    def remove(self, record: TaskRecord) -> None:
        self._tasks.pop(record.task_id, None)

    def finish(self, record: TaskRecord, status: str, reply: dict[str, Any], now: float, message: str | None) -> None:
        record.status, record.reply, record.updated, record.finished = status, reply, now, now
        record.status_message = message
        record.done.set()

    def page(self, mine: list[TaskRecord], cursor: Any) -> tuple[list[TaskRecord], str | None]:
        """One tasks/list page of `mine` (creation order) after `cursor`, and the next cursor.
        ValueError for a cursor this store did not give."""
        after = 0
        if cursor is not None:
            if not isinstance(cursor, str) or not cursor.isdigit() or len(cursor) > 18:
                raise ValueError("invalid cursor")
            after = int(cursor)
        rest = [t for t in mine if t.seq > after]
        page = rest[: self.page_size]
        return page, (str(page[-1].seq) if len(rest) > len(page) else None)

    def expired(self, now: float) -> list[TaskRecord]:
        return [t for t in self._tasks.values() if t.expires <= now]

    def stats(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for t in self._tasks.values():
            counts[t.status] += 1
        return counts
