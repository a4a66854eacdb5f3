"""Request-body size limits for every route but /mcp (which reads its own body with the same limit), and
JSON sent with a form's label.

A body with a Content-Length over the limit is refused before any of it is read. A chunked body
(no Content-Length) is read here, up to the limit, before the route sees it: over the limit it is
refused with the same 413 a sized one gets (FastAPI would otherwise turn an error raised while it
reads the body into a 400 of its own).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from paygate.asgi import Receive, Scope


def declared_too_big(scope: Scope, limit: int) -> bool:
    """A Content-Length over `limit` (or not a number)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return not value.isdigit() or int(value) > limit
    return False


def is_chunked(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope["headers"])


async def read_chunked(receive: Receive, limit: int) -> Receive | None:
    """Read a chunked body whole, up to `limit` bytes: a receive that replays it, then carries on with
    the connection's own (a streaming route still hears the client leave); None when it is over."""
    held: list[MutableMapping[str, Any]] = []
    size = 0
    while True:
        message = await receive()
        held.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.request")
    replay: list[MutableMapping[str, Any]] = [{"type": "http.request", "body": body, "more_body": False}]
    replay += [m for m in held if m["type"] != "http.request"]

    async def replaying() -> MutableMapping[str, Any]:
        return replay.pop(0) if replay else await receive()

    return replaying


FORM = b"application/x-www-form-urlencoded"
JSON_TYPE = b"application/json"


def labelled_form(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value.split(b";", 1)[0].strip().lower() == FORM)
    return False


async def json_despite_label(scope: Scope, receive: Receive, limit: int) -> Receive | None:
    """`curl -d '{...}'` without `-H Content-Type` (as the reference's README shows) labels JSON as a form.
    The body is read (up to `limit`; None when over) and, when it is a JSON object or array, relabelled
    `application/json` in the scope, so the routes parse it as they parse any JSON body."""
    whole = await read_chunked(receive, limit)
    if whole is None:
        return None
    first = await whole()
    if first.get("body", b"").lstrip()[:1] in (b"{", b"["):
        scope["headers"] = [(name, JSON_TYPE if name == b"content-type" else value) for name, value in scope["headers"]]
    held = [first]

    async def replaying() -> MutableMapping[str, Any]:
        return held.pop() if held else await whole()

    return replaying
