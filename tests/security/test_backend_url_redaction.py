"""A remote backend URL's credentials and query values never reach a log or a response (issue 11, item 14)."""

from __future__ import annotations

import pytest

from paygate.core.urls import redact_url
from tests.inprocess import running_inprocess_gateway
from tests.misbehaving_http import MisbehavingServer

SECRETS = ("hunter2", "s3cr3t-query", "sk-live-0123456789")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:hunter2@127.0.0.1:8080/mcp?apikey=s3cr3t&v=1", "http://***@127.0.0.1:8080/mcp?apikey=***&v=***"),
        ("https://sk-live-0123456789@example.com/mcp", "https://***@example.com/mcp"),
        ("https://example.com/s/sk-live-0123456789/mcp", "https://example.com/s/***/mcp"),
        ("https://example.com/mcp?sk-live-0123456789", "https://example.com/mcp?***"),
        ("https://example.com/mcp?token=a&&=b#frag", "https://example.com/mcp?token=***&***&***"),
        ("https://[::1]:9443/v1/mcp", "https://[::1]:9443/v1/mcp"),
        ("not a url", "***"),
        ("http://host:99999/", "***"),
    ],
)
def test_redact_url_keeps_what_tells_urls_apart_and_hides_the_rest(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_backend_url_is_logged_and_shown_without_its_secrets() -> None:
    with MisbehavingServer() as server:
        url = f"http://admin:hunter2@127.0.0.1:{server.port}/s/sk-live-0123456789/mcp?apikey=s3cr3t-query"
        with running_inprocess_gateway("--remote-url", url, "--log-level", "debug") as gw:
            key = gw.create_key(5)
            assert "result" in gw.call_tool("add", {"a": 1, "b": 2}, key)
            shown = [gw.stderr()]
            for path in ("/info", "/health", "/status", "/config", "/ready"):
                shown.append(gw.client.get(path, headers=gw.admin()).text)
        logged = gw.stderr()
    assert f"connected to http://***@127.0.0.1:{server.port}/s/***/mcp?apikey=***" in logged
    for text in [*shown, logged]:
        for secret in SECRETS:
            assert secret not in text
