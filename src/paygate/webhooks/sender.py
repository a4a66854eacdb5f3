"""One webhook POST: vet the URL's addresses, sign the body, send, report the outcome.

The request goes through the gateway's lean HTTP/1.1 client (`http/h1.py`, the one the
remote backend uses): httpx cost ~1.4 ms of CPU per delivery on the event loop the tool calls share,
which halved tool-call throughput behind a healthy receiver (bench/README.md). One keep-alive pool
per (URL, vetted address): the connection is made to the address the SSRF check approved, with the
URL's host in the Host header and the TLS server name. No redirects are followed (a 3xx is a
failure: a redirect could lead anywhere, SSRF checks included), no proxies, and at most
`MAX_RESPONSE_BYTES` of the answer is read, for at most `BODY_GRACE_SECONDS` (only so the
connection can be reused; the status decides). Errors are
reported, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass

from paygate import __version__
from paygate.http.h1 import H1Error, H1Pool
from paygate.webhooks.signing import SIGNATURE_HEADER, sign
from paygate.webhooks.ssrf import Resolver, UnsafeUrl, resolve, shown, system_resolver

MAX_POOLS = 64  # destinations x addresses kept open; the least recently used pool is closed past this
CONNECTIONS_PER_POOL = 4  # a destination has one batch in flight at a time; tests add a few
MAX_RESPONSE_BYTES = 64 * 1024
BODY_GRACE_SECONDS = 1.0  # past this, an unfinished answer body is dropped with its connection


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int  # the HTTP status, 0 when there was no answer
    error: str | None
    ms: float

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300


class Sender:
    def __init__(
        self,
        timeout: float,
        allow_private: bool,
        *,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.resolver = resolver
        self._ssl = ssl_context
        self._pools: OrderedDict[tuple[str, str | None], H1Pool] = OrderedDict()
        self._user_agent = f"paygate-mcp/{__version__}"

    def _pool(self, url: str, address: str | None) -> H1Pool:
        key = (url, address)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = H1Pool(
                url, CONNECTIONS_PER_POOL, self.timeout, self._user_agent, self._ssl, connect_host=address
            )
            while len(self._pools) > MAX_POOLS:
                _, old = self._pools.popitem(last=False)
                asyncio.get_running_loop().create_task(old.aclose())
        else:
            self._pools.move_to_end(key)
        return pool

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.aclose()

    async def post(
        self,
        url: str,
        body: bytes,
        *,
        secret: str | None,
        attempt: int = 0,
        delivery_id: int | None = None,
        test: bool = False,
        timeout: float | None = None,
    ) -> Outcome:
        """`timeout` (seconds): this destination's own (a gateway hook's timeoutMs), else the sender's."""
        limit = timeout or self.timeout
        started = time.perf_counter()

        def elapsed() -> float:
            return round((time.perf_counter() - started) * 1000, 2)

        try:
            target = await resolve(url, self.allow_private, self.resolver)
        except UnsafeUrl as exc:
            return Outcome(0, str(exc), elapsed())
        headers = {"Content-Type": "application/json", **target.headers}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        if attempt > 0:
            headers["X-PayGate-Retry"] = str(attempt)
        if delivery_id is not None:
            headers["X-PayGate-Delivery"] = str(delivery_id)
        if test:
            headers["X-PayGate-Test"] = "1"
        status = 0
        try:
            async with asyncio.timeout(limit):
                pool = self._pool(target.url, target.address)
                async with pool.stream("POST", headers, body) as response:
                    status = response.status_code  # the answer: the body is read only to reuse the connection
                    with contextlib.suppress(H1Error, TimeoutError):
                        async with asyncio.timeout(BODY_GRACE_SECONDS):
                            await response.read(MAX_RESPONSE_BYTES)
        except TimeoutError:
            if not status:
                return Outcome(0, f"timed out after {limit:g} s", elapsed())
        except (H1Error, OSError, ssl.SSLError, ValueError) as exc:
            # An error text may quote the URL or address; only its scheme and host are ever shown.
            text = _first_line(exc).replace(url, shown(url))
            if target.address:
                text = text.replace(target.address, shown(url))
            return Outcome(0, f"{type(exc).__name__}: {text}", elapsed())
        if 200 <= status < 300:
            return Outcome(status, None, elapsed())
        return Outcome(status, f"HTTP {status}", elapsed())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "connection failed")[:200]
