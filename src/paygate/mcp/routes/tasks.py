"""GET/POST /admin/tasks: the MCP tasks the gateway holds (mcp/task_calls.py), in the reference's shapes.

GET lists them, newest first (`?status=`, `?keyPrefix=`, `?limit=`), with counts by status, or shows
one (`?taskId=`, 404 when unknown); POST `{"action": "cancel", "taskId"}` cancels a working task (its
backend call too, and settles its charge; audited as `task.cancelled`), `{"action": "stats"}` gives
the counts.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field

from paygate.api.common import AdminGuard, Body, actor
from paygate.core.domain_errors import Invalid
from paygate.mcp.task_calls import TaskCalls

StatusFilter = Literal["working", "input_required", "completed", "failed", "cancelled", "running", "pending"]


class TasksAction(Body):
    action: str = Field(default="", max_length=50)
    task_id: str | None = Field(default=None, max_length=200)


def router(guard: AdminGuard, tasks: TaskCalls) -> APIRouter:
    r = guard.router("tasks")

    @r.get("/admin/tasks")
    async def list_tasks(
        task_id: str | None = Query(default=None, alias="taskId", max_length=200),
        status: StatusFilter | None = None,
        key_prefix: str | None = Query(default=None, alias="keyPrefix", max_length=64),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        """The tasks held (newest first, filtered), their total and counts by status; or one task (`taskId`)."""
        if task_id is not None:
            return tasks.admin_get(task_id)
        wanted = "working" if status == "running" else status  # the reference's name for it
        return tasks.admin_list(wanted, key_prefix, limit)

    @r.post("/admin/tasks")
    async def task_action(body: TasksAction, request: Request) -> dict[str, Any]:
        """`{"action": "cancel", "taskId"}` cancels a working task; `{"action": "stats"}` counts them."""
        if body.action == "stats":
            stats = tasks.stats()
            return {"stats": stats, "totalTasks": stats["total"]}
        if body.action == "cancel":
            if not body.task_id:
                raise Invalid("taskId is required to cancel a task")
            return tasks.admin_cancel(body.task_id, actor(request))
        raise Invalid("Unknown action. Use cancel/stats.")

    return r
