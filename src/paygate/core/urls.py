"""URLs as they may be logged or shown: credentials and secrets out.

A backend URL can carry a secret in three places: the user info
(`https://user:token@host/…`, a token is often the user name), the query
(`?apikey=…`) and the path (`/s/sk-…/mcp`). `redact_url` keeps what tells the
URL apart (scheme, host, port, the query's names and the path's plain words)
and puts `***` in place of the rest.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MASK = "***"
# A path segment shown as is: a short lower-case word ("mcp", "sse", "api") or at most 3 characters ("v1", "2").
# Anything else (ids, tokens such as Zapier's /s/sk-…/ paths, ;params) could be a credential.
_PLAIN_SEGMENT = re.compile(r"[a-z][a-z_-]{0,15}|[A-Za-z0-9]{1,3}")
# A query parameter's name shown as is (its value never is): a word, as `apikey`, `api_key`, `token`.
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z_.-]{0,31}|[A-Za-z0-9]{1,3}")


def redact_url(url: str) -> str:
    """`url` with user info → `***@`, every query value → `***` (names kept when they are plain words),
    token-like path segments → `***` and no fragment; `***` alone when it is no URL with a host."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    if ":" in host:
        host = f"[{host}]"
    user = f"{MASK}@" if "@" in parts.netloc else ""
    path = "/".join(s if not s or _PLAIN_SEGMENT.fullmatch(s) else MASK for s in parts.path.split("/"))
    query = "?" + "&".join(map(_redacted_parameter, parts.query.split("&"))) if parts.query else ""
    return f"{parts.scheme}://{user}{host}{port}{path}{query}"


def _redacted_parameter(parameter: str) -> str:
    name, equals, _ = parameter.partition("=")
    return f"{name}={MASK}" if equals and _PLAIN_NAME.fullmatch(name) else MASK
