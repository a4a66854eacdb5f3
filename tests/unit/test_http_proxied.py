"""A remote backend behind an HTTP proxy (the proxy environment variables) is reached through httpx, which
honours them; every other backend through the lean H1Pool, and httpx is then never imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from paygate.http.h1 import H1Error, H1Pool
from paygate.mcp.backends.http import HttpBackend
from paygate.mcp.backends.http_proxied import HttpxClient


def test_without_a_proxy_the_backend_uses_the_lean_client(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(HttpBackend("http://127.0.0.1:9/mcp")._client, H1Pool)


async def test_behind_a_proxy_the_backend_uses_httpx_and_its_errors_name_no_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # the discard port: nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    backend = HttpBackend("http://user:s3cret@backend.example:8080/mcp?token=t0ken")
    client = backend._client
    assert isinstance(client, HttpxClient)
    with pytest.raises(H1Error) as failed:
        async with client.stream("POST", {"Content-Type": "application/json"}, b"{}"):
            pass
    assert "s3cret" not in str(failed.value) and "t0ken" not in str(failed.value)
    await client.aclose()


@pytest.mark.e2e  # a fresh interpreter: this one has imported both for other tests
def test_a_gateway_without_a_proxied_backend_never_imports_httpx_or_redis() -> None:
    probe = "import sys, paygate.cli, paygate.app; print(sorted(m for m in ('httpx', 'redis') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
