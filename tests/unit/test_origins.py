"""Which browser origins may use /mcp (core/origins.py)."""

from __future__ import annotations

import pytest

from paygate.core.origins import normalise_origin, origin_allowed

LISTED = frozenset({"https://app.example.com", "http://intranet:8080"})


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.com", True),
        ("HTTPS://App.Example.com/", True),
        ("http://intranet:8080", True),
        ("http://intranet:8081", False),
        ("http://intranet", False),
        ("https://app.example.com.evil.example", False),
        ("https://evil.example", False),
        ("null", False),
        ("", False),
        ("http://localhost", True),
        ("http://localhost:3000", True),
        ("https://127.0.0.1:8443", True),
        ("http://[::1]:80", True),
        ("http://localhost.evil.example", False),
        ("http://127.0.0.1.evil.example", False),
        ("file://localhost", False),
        ("http://[::1", False),
    ],
)
def test_loopback_and_listed_origins_only(origin: str, allowed: bool) -> None:
    assert origin_allowed(origin, LISTED) is allowed


def test_a_wildcard_allows_every_origin() -> None:
    assert origin_allowed("https://anything.example", {"*"}) and origin_allowed("null", {"*"})


@pytest.mark.parametrize(
    ("entry", "normal"),
    [("https://App.Example.com/", "https://app.example.com"), (" * ", "*"), ("http://h:8080", "http://h:8080")],
)
def test_entries_are_normalised(entry: str, normal: str) -> None:
    assert normalise_origin(entry) == normal


@pytest.mark.parametrize(
    "entry",
    [
        "app.example.com",
        "ftp://x",
        "https://a.example/path",
        "https://a.example?q=1",
        "https://",
        "http://h:0",
        "http://h:99999",
    ],
)
def test_entries_that_are_not_origins_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="not an origin"):
        normalise_origin(entry)
