"""Config hot reload (`POST /config/reload`, `SIGHUP`): re-read the config file, apply what may change
while serving, report the rest (docs/reload.md).

A reload is all or nothing. The new file is read (admin/reload_file.py), merged under the same
PAYGATE_* env and flags the gateway started with (so a flag still wins over the file: a reload never
undoes one), validated as a whole like `wrap` validates it, and then every participant *prepares*
its new objects (a new price book, webhook destination, alert rule set …), any of which may refuse.
Only when all are ready are they committed, in one synchronous step on the event loop: no call sees
half a reload. A call already admitted keeps what it was admitted with (its price, its refund
policy); the next one sees only the new settings.

Participants are registered by the composition root (`Runtime.on_reload`): `(new settings, changed
names) -> commit or None`; a prepare raises ValueError (the message names the field) to refuse.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from paygate.admin.config_view import MASK, mask_value
from paygate.admin.reload_file import ConfigFileError, read_config_file
from paygate.config import ConfigError, ConfigSources, Settings, normalise
from paygate.core.domain_errors import Invalid
from paygate.events.hub import EventHub
from paygate.validation import NOT_ENFORCED, ignored_settings

log = logging.getLogger("paygate")

# The reference's hot-reloadable fields (camelCase, as the file spells them) → Settings' names.
RELOADABLE: dict[str, str] = {
    "defaultCreditsPerCall": "default_credits_per_call",
    "toolPricing": "tool_pricing",
    "globalRateLimitPerMin": "global_rate_limit_per_min",
    "shadowMode": "shadow_mode",
    "refundOnFailure": "refund_on_failure",
    "freeMethods": "free_methods",
    "globalQuota": "global_quota",
    "webhookUrl": "webhook_url",
    "webhookSecret": "webhook_secret",
    "webhookMaxRetries": "webhook_max_retries",
    "alertRules": "alert_rules",
}
PINNED = "set by {by}, which wins over the file: kept as it is"
HELD = "set by the active config profile {name}, which wins over the file: kept as it is"

Commit = Callable[[], str | None]  # applies prepared objects (must not raise); may return a warning
Participant = Callable[[Settings, frozenset[str]], Commit | None]


class ReloadRefused(Invalid):
    """400: the file cannot be applied; nothing changed. The body is the reference's answer (`ok: false`)
    with `error` (the first problem) and `details` (every problem, `{field, message}`)."""

    def __init__(self, details: list[dict[str, str]]) -> None:
        text = _summary(details)
        super().__init__(text)
        self.extra = {"ok": False, "changed": [], "skipped": [], "warnings": [], "message": text, "details": details}


def _refused(message: str, field: str = "") -> ReloadRefused:
    return ReloadRefused([{"field": field, "message": message}])


@dataclass(frozen=True, slots=True)
class Plan:
    """What a validated file would change."""

    settings: Settings  # the running settings with the reloadable changes in place
    file: dict[str, Any]
    changed: list[str]
    skipped: list[str]
    warnings: list[str]


class ConfigReloader:
    def __init__(
        self, settings: Settings, sources: ConfigSources | None, events: EventHub, participants: list[Participant]
    ) -> None:
        self.settings = settings  # the one Settings every service holds: reloaded fields are reassigned on it
        self.sources = sources
        self.events = events
        self.participants = participants  # read at each reload: builders register after this is made
        self.file = dict(sources.file) if sources else {}  # the last file applied: flags' and env's pins diff it
        self.base = dict(self.file)  # that file as read, without the overlay
        # The active config profile's settings (admin/profiles.py), laid over every file this reloads, so a
        # reload of the file keeps the profile in force; `overlay_name` names it in the warnings.
        self.overlay: dict[str, Any] = {}
        self.overlay_name: str | None = None

    @property
    def default_path(self) -> str | None:
        return self.sources.path if self.sources else None

    def read(self, path: str | None) -> tuple[str, dict[str, Any]]:
        """The file to reload from (`path`, else the startup config file) and its JSON object. Blocking
        I/O: the route runs it in a thread; `apply` then runs on the loop."""
        where = path or self.default_path
        if not where:
            raise _refused("no config file to reload: the gateway was started without --config (send configPath)")
        try:
            return where, read_config_file(where)
        except ConfigFileError as exc:
            raise _refused(str(exc)) from None

    async def reload(self, path: str | None, actor: str, source: str) -> dict[str, Any]:
        """Read the file in a thread (a slow disk must not stall calls), then apply it on the loop."""
        try:
            where, raw = await asyncio.to_thread(self.read, path)
        except ReloadRefused as exc:
            self._failed(actor, source, path or self.default_path, exc)
            raise
        return self.apply(where, raw, actor, source)

    def apply(
        self,
        where: str,
        raw: dict[str, Any],
        actor: str,
        source: str,
        overlay: tuple[str | None, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Validate `raw` (a config file's object) with the overlay (the active profile's settings; `overlay`
        replaces it), then apply it: the answer `{ok, changed, skipped, warnings, message}`, or
        ReloadRefused (400) with nothing changed. Synchronous on the loop."""
        profile, layer = overlay if overlay is not None else (self.overlay_name, self.overlay)
        try:
            plan, commits = self.prepare({**raw, **layer})
        except ReloadRefused as exc:
            self._failed(actor, source, where, exc)
            raise
        except ValueError as exc:  # a participant refused (an unsafe webhook URL, a bad alert rule …)
            refused = _refused(str(exc))
            self._failed(actor, source, where, refused)
            raise refused from None
        # From here on nothing may fail or yield: the whole set is swapped in one step of the loop.
        held = _held(self.base, raw, layer) if profile else []
        warnings = list(plan.warnings) + [f"{k}: {HELD.format(name=repr(profile))}" for k in held]
        skipped = sorted({*plan.skipped, *held})
        for commit in commits:
            note = commit()
            if note:
                warnings.append(note)
        for name in plan.changed:
            field = RELOADABLE[name]
            setattr(self.settings, field, getattr(plan.settings, field))  # new values, not mutated old ones
        self.file = plan.file
        self.base, self.overlay, self.overlay_name = raw, layer, profile
        n = len(plan.changed)
        answer = {
            "ok": True,
            "changed": plan.changed,
            "skipped": skipped,
            "warnings": warnings,
            "message": f"Config reloaded: {n} field{'' if n == 1 else 's'} updated",
        }
        data = {"source": source, "path": where, "changed": plan.changed, "skipped": skipped}
        self.events.publish("config.reloaded", actor, **data, warnings=len(warnings))  # names only, never values
        return answer

    def prepare(self, raw: dict[str, Any]) -> tuple[Plan, list[Commit]]:
        """The plan and every participant's prepared commit, nothing applied (a dry run when discarded):
        ReloadRefused, or ValueError from a participant, when the file cannot apply."""
        plan = self.plan(raw)
        return plan, [c for p in list(self.participants) if (c := p(plan.settings, frozenset(plan.changed)))]

    def check(self, layer: dict[str, Any]) -> None:
        """Would the last file with `layer` over it apply? ReloadRefused (400) if not; nothing changes."""
        try:
            self.prepare({**self.base, **layer})
        except ValueError as exc:
            raise _refused(str(exc)) from None

    def plan(self, raw: dict[str, Any]) -> Plan:
        """The file checked as `wrap` would check it (plus: unknown keys refused), diffed against what runs."""
        ignored = ignored_settings(raw)
        # `wrap` starts despite an unknown key (with a warning); a reload is told at once, by an admin: refused
        details = [{"field": d.field, "message": "unknown key"} for d in ignored if d.message != NOT_ENFORCED]
        if details:
            raise ReloadRefused(details)
        later = [f"{d.field}: {d.message}" for d in ignored if d.message == NOT_ENFORCED]
        sources = self.sources or ConfigSources(None, {}, {}, {})
        try:
            new = Settings.model_validate(sources.merged(raw))
        except ConfigError as exc:
            raise _refused(str(exc)) from None
        except ValidationError as exc:
            raise ReloadRefused([_detail(err) for err in exc.errors()]) from None
        if not new.has_backend:
            raise _refused("no backend: set serverCommand, remoteUrl, or servers", "serverCommand")
        return self._diff(new, raw, sources, later)

    def _diff(self, new: Settings, raw: dict[str, Any], sources: ConfigSources, later: list[str]) -> Plan:
        live = self.settings
        changed: list[str] = []
        skipped: set[str] = set()
        for field, info in type(live).model_fields.items():
            if getattr(live, field) == getattr(new, field):
                continue
            name = info.alias or field
            if name in RELOADABLE:
                changed.append(name)
            else:
                skipped.add(name)
        warnings = list(later)
        warnings += _pinned(normalise(self.file), normalise(raw), sources, changed, skipped)
        update = {RELOADABLE[name]: getattr(new, RELOADABLE[name]) for name in changed}
        return Plan(live.model_copy(update=update), raw, sorted(changed), sorted(skipped), warnings)

    def _failed(self, actor: str, source: str, where: str | None, exc: ReloadRefused) -> None:
        self.events.publish("config.reload_failed", actor, source=source, path=where, error=exc.message)


def _pinned(
    old: dict[str, Any], new: dict[str, Any], sources: ConfigSources, changed: list[str], skipped: set[str]
) -> list[str]:
    """Warnings (and `skipped` entries) for what the file changed and a flag or env var holds."""
    flags = normalise(sources.flags)
    held = {**normalise(sources.env), **flags}
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        if key not in held or old.get(key) == new.get(key):
            continue
        if key == "toolPricing" and isinstance(held[key], dict):  # --tool-price pins only the tools it names
            tools = [t for t in sorted(held[key]) if _entry(old, key, t) != _entry(new, key, t)]
            out += [f"toolPricing.{t}.creditsPerCall: {PINNED.format(by=_by(key, flags))}" for t in tools]
            if tools and key not in changed:
                skipped.add(key)
            continue
        if key not in changed:
            skipped.add(key)
            out.append(f"{key}: {PINNED.format(by=_by(key, flags))}")
    return out


def _held(base: dict[str, Any], raw: dict[str, Any], layer: dict[str, Any]) -> list[str]:
    """What a reloaded file changed under the active profile's settings (the profile wins)."""
    return [key for key in sorted(layer) if base.get(key) != raw.get(key)]


def _by(key: str, flags: dict[str, Any]) -> str:
    return "a command-line flag" if key in flags else "a PAYGATE_* environment variable"


def _entry(layer: dict[str, Any], key: str, name: str) -> Any:
    value = layer.get(key)
    return value.get(name) if isinstance(value, dict) else None


def _detail(err: Any) -> dict[str, str]:
    """One validation error as `{field, message}`; a custom check's message on a secret-named field is
    replaced (it could quote part of the value), pydantic's own messages never quote the input."""
    loc = [str(p) for p in err["loc"]]
    message = str(err["msg"]).removeprefix("Value error, ")
    if loc and mask_value(loc[0], "x") == MASK:  # importKeys' entries are named by the keys themselves
        loc = loc[:1]
        message = "invalid value" if err.get("type") == "value_error" else message
    return {"field": ".".join(loc) or "(root)", "message": message}


def _summary(details: Sequence[dict[str, str]]) -> str:
    first = details[0]
    where = f"{first['field']}: " if first["field"] else ""
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"Invalid config: {where}{first['message']}{more}"
