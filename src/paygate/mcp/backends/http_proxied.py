"""httpx behind the `H1Pool` interface, for remote backends reached through an HTTP proxy: httpx honours the
proxy environment variables; the lean `h1.H1Pool` serves every other backend (mcp/backends/http.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from paygate.core.urls import redact_url
from paygate.http.h1 import H1Error


class HttpxClient:
    """httpx behind the `H1Pool` interface, for backends reached through a proxy."""

    def __init__(self, url: str, max_connections: int, user_agent: str) -> None:
        self.url = url
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            timeout=httpx.Timeout(30.0, read=None),
            headers={"User-Agent": user_agent},
        )

    @contextlib.asynccontextmanager
    async def stream(self, method: str, headers: dict[str, str], body: bytes = b"") -> AsyncIterator[Any]:
        try:
            async with self.client.stream(method, self.url, content=body, headers=headers) as resp:
                yield resp
        except httpx.HTTPError as exc:
            raise H1Error(f"{type(exc).__name__}: {str(exc).replace(self.url, redact_url(self.url))}") from exc

    async def aclose(self) -> None:
        await self.client.aclose()
