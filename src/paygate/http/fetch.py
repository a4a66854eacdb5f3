"""One JSON document fetched from a URL someone else chose (an authorization server's metadata and keys, a
client's metadata document): the webhook SSRF rules (webhooks/ssrf.py: the name resolved and every address
vetted, the connection pinned to a vetted one), no redirects, a size and a time limit, errors raised as
`FetchError` with the URL shown only by scheme and host."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import orjson

from paygate import __version__
from paygate.http.h1 import H1Error, H1Pool
from paygate.webhooks.ssrf import Resolver, UnsafeUrl, resolve, shown, system_resolver

MAX_DOCUMENT_BYTES = 256 * 1024


class FetchError(Exception):
    """The document could not be fetched or was not JSON (the message is safe to log and show)."""


async def fetch_json(
    url: str,
    *,
    allow_private: bool = False,
    timeout: float = 5.0,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    resolver: Resolver = system_resolver,
    ssl_context: ssl.SSLContext | None = None,
) -> Any:
    try:
        target = await resolve(url, allow_private, resolver)
    except UnsafeUrl as exc:
        raise FetchError(str(exc)) from exc
    pool = H1Pool(target.url, 1, timeout, f"paygate-mcp/{__version__}", ssl_context, connect_host=target.address)
    try:
        async with asyncio.timeout(timeout):
            async with pool.stream("GET", {"Accept": "application/json", **target.headers}) as response:
                if response.status_code != 200:  # a redirect included: it could lead anywhere
                    raise FetchError(f"{shown(url)} answered HTTP {response.status_code}")
                body = await response.read(max_bytes)
        return orjson.loads(body)
    except TimeoutError as exc:
        raise FetchError(f"{shown(url)} did not answer within {timeout:g} s") from exc
    except (H1Error, OSError, ssl.SSLError) as exc:
        raise FetchError(f"{shown(url)}: {type(exc).__name__}") from exc
    except orjson.JSONDecodeError as exc:
        raise FetchError(f"{shown(url)} did not answer JSON") from exc
    finally:
        await pool.aclose()
