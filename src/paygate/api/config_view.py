"""GET /config: the running configuration (camelCase, as the config file spells it), secrets masked.

Masking is by field name, so settings other issues add are covered without
listing them here: anything named like a secret becomes "***", backend commands
and their arguments become "***", webhook URLs keep only scheme and host, other
URLs lose their credentials and query, and import keys are shown masked.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request

from paygate.api.common import actor, require_admin
from paygate.core.keys import mask_key
from paygate.services.runtime import Runtime

MASK = "***"
_SECRET_NAME = re.compile(r"secret|password|passwd|token|credential|apikey|adminkey|privatekey", re.IGNORECASE)
_COMMAND_NAMES = frozenset({"serverCommand", "command"})
_ARGS_NAMES = frozenset({"serverArgs", "args"})
_KEYED_BY_SECRET = frozenset({"importKeys"})  # maps whose *keys* are raw API keys


def mask_url(name: str, url: str) -> str:
    """Webhook URLs: scheme + host only (their paths often carry tokens). Other URLs: no
    credentials and no query, the rest kept for debugging."""
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
    if "webhook" in name.lower():
        return f"{parts.scheme}://{host}{port}/{MASK}"
    user = ""
    if parts.username is not None or parts.password is not None:
        user = f"{parts.username}:{MASK}@" if parts.username else f":{MASK}@"
    query = f"?{MASK}" if parts.query else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}{query}"


def mask_value(name: str, value: Any) -> Any:
    if value is None or value == "" or value == [] or value == {}:
        return value
    if _SECRET_NAME.search(name) and not isinstance(value, bool | int | float):
        return MASK
    if name in _COMMAND_NAMES:
        return MASK
    if name in _ARGS_NAMES and isinstance(value, list):
        return [MASK]
    if name in _KEYED_BY_SECRET and isinstance(value, dict):
        return {mask_key(str(k)): v for k, v in value.items()}
    if isinstance(value, dict):
        return {k: mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(name, v) for v in value]
    if isinstance(value, str) and name.lower().endswith("url"):
        return mask_url(name, value)
    return value


def masked_settings(rt: Runtime) -> dict[str, Any]:
    raw = rt.settings.model_dump(by_alias=True, mode="json")
    return {k: mask_value(k, v) for k, v in raw.items()}


def router(rt: Runtime) -> APIRouter:
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["config-view"])

    @r.get("/config")
    async def get_config(request: Request) -> dict[str, Any]:
        """The running configuration with secrets masked."""
        view = masked_settings(rt)
        rt.events.publish("config.export", actor(request), fields=len(view))
        return view

    return r
