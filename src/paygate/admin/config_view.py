"""The running configuration (camelCase, as the config file spells it) with secrets masked, for GET /config.

Masking is by field name, so settings other issues add are covered without
listing them here: anything named like a secret becomes "***", backend commands
and their arguments become "***", webhook URLs keep only scheme and host, other
URLs lose their credentials and query values, and import keys are shown masked.
"""

from __future__ import annotations

import re
from typing import Any

from paygate.config import Settings
from paygate.core.keys import mask_key
from paygate.core.urls import redact_url
from paygate.events.hub import EventHub
from paygate.webhooks.ssrf import shown

MASK = "***"
# Names ending in "key(s)" too (signingKey, licenseKey …: settings added later); importKeys is matched first.
_SECRET_NAME = re.compile(r"secret|password|passwd|token|credential|authorization|cookie|dsn|keys?$", re.IGNORECASE)
_COMMAND_NAMES = frozenset({"serverCommand", "command"})
_ARGS_NAMES = frozenset({"serverArgs", "args"})
_KEYED_BY_SECRET = frozenset({"importKeys"})  # maps whose *keys* are raw API keys
_URL_VALUE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")  # a URL under any name (oauthIssuer, dsnEndpoint …)
_KEYED_BY_NAME = frozenset({"toolPricing"})  # maps whose keys are tool names, not setting names


def mask_url(name: str, url: str) -> str:
    """Webhook URLs: scheme + host only (the reference's rule, as webhook messages show them). Other URLs
    as logs show them (`core/urls.redact_url`): user info, token-like path segments and every query
    value become ***, plain-word query names stay (`?apikey=***`)."""
    return shown(url) if "webhook" in name.lower() else redact_url(url)


def mask_import_keys(keys: dict[str, Any]) -> dict[str, Any]:
    """Import keys by a masked form that reveals little of short keys (the usual 7 + 4 characters only
    of keys of 32 or more), each listed even when two mask alike."""
    out: dict[str, Any] = {}
    for raw, credits in keys.items():
        shown = mask_key(raw) if len(raw) >= 32 else raw[:3] + "…"
        label, n = shown, 1
        while label in out:
            n += 1
            label = f"{shown} ({n})"
        out[label] = credits
    return out


def mask_value(name: str, value: Any) -> Any:
    if value is None or value == "" or value == [] or value == {}:
        return value
    if name in _KEYED_BY_SECRET and isinstance(value, dict):
        return mask_import_keys(value)
    if name in _KEYED_BY_NAME and isinstance(value, dict):  # a tool named get_token is not a secret
        return {k: mask_value("entry", v) for k, v in value.items()}
    if _SECRET_NAME.search(name) and not isinstance(value, bool | int | float):
        return MASK
    if name in _COMMAND_NAMES:
        return MASK
    if name == "plugins" and isinstance(value, list):  # a plugin's options may hold its own credentials
        return [{**e, "options": dict.fromkeys(e.get("options") or {}, MASK)} for e in value]
    if name in _ARGS_NAMES and isinstance(value, list):
        return [MASK]
    if isinstance(value, dict):
        # Inside a webhook setting (webhookFilters' entries) a plain `url` is a webhook URL too.
        inherited = "webhook." if "webhook" in name.lower() else ""
        return {k: mask_value(inherited + str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(name, v) for v in value]
    if isinstance(value, str) and (name.lower().endswith(("url", "uri")) or _URL_VALUE.match(value)):
        return mask_url(name, value)
    return value


def masked_settings(settings: Settings) -> dict[str, Any]:
    raw = settings.model_dump(by_alias=True, mode="json")
    return {k: mask_value(k, v) for k, v in raw.items()}


class ConfigView:
    """Reading the configuration is itself audited (`config.export`): it is the map of the deployment."""

    def __init__(self, settings: Settings, events: EventHub) -> None:
        self.settings = settings
        self.events = events

    def export(self, actor: str) -> dict[str, Any]:
        view = masked_settings(self.settings)
        self.events.publish("config.export", actor, fields=len(view))
        return view
