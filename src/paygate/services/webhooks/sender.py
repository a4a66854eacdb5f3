"""One webhook POST: vet the URL's addresses, sign the body, send, report the outcome.

httpx, no redirects followed (a 3xx is a failure: a redirect could lead anywhere, SSRF checks
included), no proxies from the environment (the vetted address is the one connected to), the
response body never read (a receiver cannot make us buffer it). Errors are reported, never raised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from paygate import __version__
from paygate.services.webhooks.signing import SIGNATURE_HEADER, sign
from paygate.services.webhooks.ssrf import Resolver, UnsafeUrl, resolve, shown, system_resolver


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int  # the HTTP status, 0 when there was no answer
    error: str | None
    ms: float

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300


class Sender:
    def __init__(self, timeout: float, allow_private: bool, *, resolver: Resolver = system_resolver,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.resolver = resolver
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, trust_env=False,
                                             transport=self._transport)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def post(self, url: str, body: bytes, *, secret: str | None, attempt: int = 0,
                   delivery_id: int | None = None, test: bool = False) -> Outcome:
        started = time.perf_counter()

        def elapsed() -> float:
            return round((time.perf_counter() - started) * 1000, 2)

        try:
            target = await resolve(url, self.allow_private, self.resolver)
        except UnsafeUrl as exc:
            return Outcome(0, str(exc), elapsed())
        headers = {"Content-Type": "application/json", "User-Agent": f"paygate-mcp/{__version__}",
                   **target.headers}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        if attempt > 0:
            headers["X-PayGate-Retry"] = str(attempt)
        if delivery_id is not None:
            headers["X-PayGate-Delivery"] = str(delivery_id)
        if test:
            headers["X-PayGate-Test"] = "1"
        try:
            request = self._http().build_request("POST", target.url, content=body, headers=headers,
                                                 extensions=dict(target.extensions))
            response = await self._http().send(request, stream=True)
            await response.aclose()  # the body is never read
        except httpx.TimeoutException:
            return Outcome(0, f"timed out after {self.timeout:g} s", elapsed())
        except (httpx.HTTPError, OSError) as exc:
            # An error text may quote the URL; only its scheme and host are ever shown.
            text = _first_line(exc).replace(url, shown(url)).replace(target.url, shown(url))
            return Outcome(0, f"{type(exc).__name__}: {text}", elapsed())
        status = response.status_code
        if 200 <= status < 300:
            return Outcome(status, None, elapsed())
        return Outcome(status, f"HTTP {status}", elapsed())


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "connection failed")[:200]
