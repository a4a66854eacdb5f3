"""Config profiles (`/admin/config-profiles`, docs/profiles.md): named sets of hot-reloadable settings to
switch between.

A profile holds only keys `POST /config/reload` applies (admin/reload.py RELOADABLE), may extend another
(its settings merged over its parent's, root first), and is activated through the reloader itself: the
merged settings are laid over the config file as an *overlay*, validated whole and applied all or
nothing, with the reload's answer. While a profile is active a reload of the file keeps it on top; a
restart applies it again. Rollback re-activates the profile active before (a bounded stack), or, with
none before it, goes back to the file's own values.

Profiles and the activation state are store documents, so they survive a restart (and a Redis fleet
shares them: each instance applies an activation over its own file, see the docs). Secrets
(`webhookSecret`, and `webhookUrl` beyond its host) never leave in an answer or an event.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from paygate.admin.config_view import MASK, mask_value
from paygate.admin.profile_merge import canonical, chain, checksum, diff, flatten, merged
from paygate.admin.reload import RELOADABLE, ConfigReloader, ReloadRefused
from paygate.core.domain_errors import Conflict, Invalid, NotFound
from paygate.core.values import iso_seconds
from paygate.events.hub import EventHub
from paygate.store.base import Store

log = logging.getLogger("paygate")
KIND = "config_profiles"
STATE_KIND, STATE_ID = "config_profile_state", "state"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_PROFILES = 100
MAX_SETTINGS_BYTES = 65_536
MAX_HISTORY = 50
Profiles = dict[str, dict[str, Any]]


def masked(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: mask_value(k, v) for k, v in settings.items()}


class ConfigProfiles:
    def __init__(self, store: Store, events: EventHub, reloader: ConfigReloader) -> None:
        self.store = store
        self.events = events
        self.reloader = reloader
        self.activations = 0  # /metrics
        self.failures = 0

    # --- reading ---------------------------------------------------------------------------------------
    def profiles(self) -> Profiles:
        return {d["name"]: d for d in self.store.doc_list(KIND)}

    def state(self) -> dict[str, Any]:
        return self.store.doc_get(STATE_KIND, STATE_ID) or {"active": None, "stack": [], "history": []}

    def listing(self) -> dict[str, Any]:
        profiles, state = self.profiles(), self.state()
        rows = [self._summary(profiles, p, state) for _, p in sorted(profiles.items())]
        return {"profiles": rows, "count": len(rows), "active": state["active"], "history": state["history"]}

    def view(self, name: str) -> dict[str, Any]:
        profiles = self.profiles()
        profile = self._find(profiles, name)
        settings = merged(profiles, name)
        return {
            **self._summary(profiles, profile, self.state()),
            "settings": masked(profile["settings"]),
            "merged": masked(settings),
            "chain": chain(profiles, name),
        }

    def _summary(self, profiles: Profiles, p: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        try:
            sum_ = checksum(merged(profiles, p["name"]))
        except Invalid:  # a parent deleted behind a child's back is refused, but old stores may hold one
            sum_ = None
        keys = sorted(p["settings"])
        return {
            "name": p["name"],
            "extends": p.get("extends"),
            "keys": keys,
            "checksum": sum_,
            "active": state["active"] == p["name"],
            "createdAt": p["createdAt"],
            "createdBy": p["createdBy"],
            "updatedAt": p["updatedAt"],
        }

    @staticmethod
    def _find(profiles: Profiles, name: str) -> dict[str, Any]:
        if name not in profiles:
            raise NotFound(f"config profile {name!r} not found")
        return profiles[name]

    # --- changing --------------------------------------------------------------------------------------
    def save(self, name: str, extends: str | None, settings: dict[str, Any], actor: str, now: float) -> dict[str, Any]:
        """Create or replace a profile; checked whole (keys, chain, and the merged settings as a reload
        would check them) before anything is written. Saving never changes what runs: activate to apply."""
        profiles = self.profiles()
        if name not in profiles and len(profiles) >= MAX_PROFILES:
            raise Invalid(f"at most {MAX_PROFILES} config profiles")
        old = profiles.get(name)
        doc = _profile(name, extends, settings, old, actor, now)
        profiles[name] = doc
        self._check(profiles, [name, *_children(profiles, name)])
        self.store.doc_put(KIND, name, doc)
        sum_ = checksum(merged(profiles, name))
        self.events.publish(
            "config_profile.saved", actor, name=name, extends=extends, keys=sorted(settings), checksum=sum_
        )
        return self.view(name)

    def _check(self, profiles: Profiles, names: list[str]) -> None:
        """Each named profile's chain and merged settings would apply (ReloadRefused or Invalid: 400)."""
        for name in names:
            settings = merged(profiles, name)
            if len(canonical(settings)) > MAX_SETTINGS_BYTES:
                raise Invalid(f"profile {name!r}: merged settings are larger than {MAX_SETTINGS_BYTES} bytes")
            try:
                self.reloader.check(settings)
            except ReloadRefused as exc:
                raise ReloadRefused([{**d, "field": f"{name}: {d['field']}"} for d in exc.extra["details"]]) from None

    def delete(self, name: str, actor: str) -> dict[str, Any]:
        profiles = self.profiles()
        self._find(profiles, name)
        if self.state()["active"] == name:
            raise Conflict(f"config profile {name!r} is active: activate another or roll back first")
        children = sorted(n for n, p in profiles.items() if p.get("extends") == name)
        if children:
            raise Conflict(f"config profile {name!r} is extended by {', '.join(children)}")
        self.store.doc_delete(KIND, name)
        self.events.publish("config_profile.deleted", actor, name=name)
        return {"deleted": name}

    def activate(self, name: str, actor: str, now: float) -> dict[str, Any]:
        profiles = self.profiles()
        self._find(profiles, name)
        state = self.state()
        answer = self._apply(name, merged(profiles, name), actor)
        stack = [*state["stack"], name][-MAX_HISTORY:]
        return self._record(state, name, stack, "activate", answer, actor, now, profiles)

    def rollback(self, actor: str, now: float) -> dict[str, Any]:
        """Back to the profile active before the current one (skipping any deleted since), else to the file."""
        profiles, state = self.profiles(), self.state()
        if state["active"] is None:
            raise Conflict("no config profile is active: nothing to roll back")
        stack = list(state["stack"][:-1])
        while stack and stack[-1] not in profiles:
            stack.pop()
        target = stack[-1] if stack else None
        answer = self._apply(target, merged(profiles, target) if target else {}, actor)
        return self._record(state, target, stack, "rollback", answer, actor, now, profiles)

    def _apply(self, name: str | None, settings: dict[str, Any], actor: str) -> dict[str, Any]:
        where = self.reloader.default_path or ""
        try:
            return self.reloader.apply(where, self.reloader.base, actor, "profile", overlay=(name, settings))
        except ReloadRefused:
            self.failures += 1
            raise

    def _record(
        self,
        state: dict[str, Any],
        name: str | None,
        stack: list[str],
        action: str,
        answer: dict[str, Any],
        actor: str,
        now: float,
        profiles: Profiles,
    ) -> dict[str, Any]:
        sum_ = checksum(merged(profiles, name)) if name else None
        entry = {"action": action, "name": name, "previous": state["active"], "checksum": sum_}
        entry.update(at=iso_seconds(now), by=actor, changed=answer["changed"])
        history = [*state["history"], entry][-MAX_HISTORY:]
        self.store.doc_put(STATE_KIND, STATE_ID, {"active": name, "stack": stack, "history": history})
        self.activations += 1
        kind = "config_profile.activated" if action == "activate" else "config_profile.rolled_back"
        self.events.publish(kind, actor, name=name, previous=state["active"], checksum=sum_, changed=answer["changed"])
        return {**answer, "active": name, "previous": state["active"], "checksum": sum_}

    def restore(self) -> None:
        """At start: the active profile laid over the startup file again (refused: logged, and the file's
        values run with no profile active)."""
        state = self.state()
        name = state["active"]
        if name is None:
            return
        try:
            self._apply(name, merged(self.profiles(), name), "system")
        except (ReloadRefused, Invalid) as exc:
            log.warning("config profile %r could not be applied at start (%s): running the file's settings", name, exc)
            self.store.doc_put(STATE_KIND, STATE_ID, {**state, "active": None, "stack": []})
            return
        log.info("config profile %r applied over the config file", name)

    # --- comparing, exporting, importing ---------------------------------------------------------------
    def diff(self, a: str, b: str) -> dict[str, Any]:
        profiles = self.profiles()
        self._find(profiles, a)
        self._find(profiles, b)
        out = diff(flatten(merged(profiles, a)), flatten(merged(profiles, b)))

        def hide(key: str, value: Any) -> Any:
            return mask_value(key.split(".")[0], value)

        shown: dict[str, Any] = {"a": a, "b": b}
        for part in ("onlyInA", "onlyInB", "unchanged"):
            shown[part] = {k: hide(k, v) for k, v in out[part].items()}
        shown["changed"] = {k: {"a": hide(k, v["a"]), "b": hide(k, v["b"])} for k, v in out["changed"].items()}
        shown["identical"] = not (out["onlyInA"] or out["onlyInB"] or out["changed"])
        return shown

    def export(self, now: float) -> dict[str, Any]:
        rows = []
        for _, p in sorted(self.profiles().items()):
            shown = masked(p["settings"])
            hidden = sorted(k for k, v in p["settings"].items() if shown[k] != v)
            rows.append({"name": p["name"], "extends": p.get("extends"), "settings": shown, "masked": hidden})
        return {"version": 1, "exportedAt": iso_seconds(now), "profiles": rows}

    def import_(self, rows: list[dict[str, Any]], mode: str, actor: str, now: float) -> dict[str, Any]:
        """An export's profiles, merged over (same names replaced) or replacing all; checked whole first."""
        current = self.profiles()
        if any(not isinstance(r.get("name"), str) for r in rows):
            raise Invalid("import: every profile needs a name")
        names = [str(r["name"]) for r in rows]
        if len(set(names)) != len(names):
            raise Invalid("import: a profile name appears twice")
        warnings: list[str] = []
        incoming: Profiles = {}
        for row in rows:
            name = str(row.get("name"))
            settings, notes = _unmasked(row, current.get(name))
            warnings += notes
            incoming[name] = _profile(name, row.get("extends"), settings, current.get(name), actor, now)
        result = {**current, **incoming} if mode == "merge" else incoming
        active = self.state()["active"]
        if active is not None and active not in result:
            raise Conflict(f"import (replace) would remove the active profile {active!r}: activate another first")
        if len(result) > MAX_PROFILES:
            raise Invalid(f"at most {MAX_PROFILES} config profiles")
        self._check(result, sorted(result))
        for name in sorted(set(current) - set(result)):
            self.store.doc_delete(KIND, name)
        for name, doc in incoming.items():
            self.store.doc_put(KIND, name, doc)
        removed = sorted(set(current) - set(result))
        self.events.publish("config_profile.imported", actor, mode=mode, names=sorted(incoming), removed=removed)
        return {"imported": sorted(incoming), "removed": removed, "mode": mode, "warnings": warnings}


def _profile(
    name: str, extends: Any, settings: Any, old: dict[str, Any] | None, actor: str, now: float
) -> dict[str, Any]:
    """A profile document, its own fields checked (the chain and values are checked by `_check`)."""
    if not isinstance(name, str) or not NAME.match(name):
        raise Invalid("name must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    if extends is not None and (not isinstance(extends, str) or not NAME.match(extends)):
        raise Invalid(f"profile {name!r}: extends must name a profile")
    if extends == name:
        raise Invalid(f"circular inheritance: {name} → {name}")
    if not isinstance(settings, dict):
        raise Invalid(f"profile {name!r}: settings must be an object")
    unknown = sorted(k for k in settings if k not in RELOADABLE)
    if unknown:
        allowed = ", ".join(RELOADABLE)
        raise Invalid(f"profile {name!r}: not a reloadable setting: {', '.join(unknown)} (allowed: {allowed})")
    if len(canonical(settings)) > MAX_SETTINGS_BYTES:
        raise Invalid(f"profile {name!r}: settings are larger than {MAX_SETTINGS_BYTES} bytes")
    created = old or {"createdAt": iso_seconds(now), "createdBy": actor}
    return {
        "name": name,
        "extends": extends,
        "settings": dict(settings),
        "createdAt": created["createdAt"],
        "createdBy": created["createdBy"],
        "updatedAt": iso_seconds(now),
    }


def _children(profiles: Profiles, name: str) -> list[str]:
    """Every profile whose chain goes through `name` (their merged settings change with it)."""
    out: list[str] = []
    for other in profiles:
        if other != name:
            try:
                if name in chain(profiles, other):
                    out.append(other)
            except Invalid:
                continue  # reported when that profile itself is checked
    return out


def _unmasked(row: dict[str, Any], old: dict[str, Any] | None) -> tuple[Any, list[str]]:
    """An exported profile's settings with the masked values put back from the profile of that name
    (an export never holds secrets), or left out with a warning when there is nothing to put back."""
    settings = row.get("settings")
    if not isinstance(settings, dict):
        return settings, []
    hidden = set(row.get("masked") or [])
    hidden |= {k for k, v in settings.items() if v == MASK}
    out, notes = dict(settings), []
    kept = (old or {}).get("settings", {})
    for key in sorted(hidden & set(settings)):
        if key in kept:
            out[key] = kept[key]
        else:
            del out[key]
            notes.append(f"{row.get('name')}: {key} was masked in the export and is not set (save it)")
    return out, notes
