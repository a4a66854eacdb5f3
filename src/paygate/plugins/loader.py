"""Plugins from the `plugins` setting: resolve each entry, build it, check it is a plugin.

An entry names a plugin as `module:attribute` (imported), or by a name in the `paygate_mcp.plugins`
entry-point group (what an installed plugin package declares). The attribute is a plugin object, or
a class / factory called with the entry's `options` as keyword arguments. Every problem is a
`PluginError` naming the entry, raised at start: a gateway never runs without a plugin it was told
to load."""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from paygate.config_plugins import DEFAULT_TIMEOUT_MS, PluginSpec
from paygate.plugins.base import HOOKS

GROUP = "paygate_mcp.plugins"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class PluginError(ValueError):
    """A plugin named in the settings cannot be loaded (the gateway does not start)."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """A plugin ready to run: the object, its hooks (bound methods, by hook name), its limits."""

    plugin: Any
    name: str
    version: str
    hooks: dict[str, Any]
    timeout: float  # seconds, per hook call
    public_paths: frozenset[str]
    source: str  # the entry as configured (for GET /plugins and messages)


def load_all(specs: list[PluginSpec]) -> list[Loaded]:
    loaded: list[Loaded] = []
    for spec in specs:
        plugin = load_one(spec)
        if any(p.name == plugin.name for p in loaded):
            raise PluginError(f"plugin {spec.module!r}: another plugin is already named {plugin.name!r}")
        loaded.append(plugin)
    return loaded


def load_one(spec: PluginSpec) -> Loaded:
    where = f"plugin {spec.module!r}"
    target = _resolve(spec.module, where)
    obj = _build(target, spec.options, where)
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"{where}: not a plugin (it has no `name`: see docs/plugins.md)")
    if not _NAME.match(name):
        raise PluginError(f"{where}: name {name!r} must be 1-64 of a-z 0-9 _ . - (it is a URL path segment)")
    version = getattr(obj, "version", "0.0.0")
    if not isinstance(version, str):
        raise PluginError(f"{where}: `version` must be a string")
    hooks: dict[str, Any] = {}
    for hook in HOOKS:
        fn = getattr(obj, hook, None)
        if fn is None:
            continue
        if not inspect.iscoroutinefunction(fn):
            raise PluginError(f"{where}: hook {hook} must be an `async def` (docs/plugins.md)")
        hooks[hook] = fn
    if not hooks:
        raise PluginError(f"{where}: not a plugin ({name!r} defines none of the hooks: {', '.join(HOOKS)})")
    public: Any = getattr(obj, "public_paths", frozenset())
    if isinstance(public, str) or not all(isinstance(p, str) for p in public):
        raise PluginError(f"{where}: `public_paths` must be a set of strings")
    own_ms = getattr(obj, "timeout_ms", None)
    ms = spec.timeout_ms or (own_ms if isinstance(own_ms, int) and own_ms > 0 else DEFAULT_TIMEOUT_MS)
    return Loaded(obj, name, version, hooks, ms / 1000, frozenset(p.strip("/") for p in public), spec.module)


def _resolve(ref: str, where: str) -> Any:
    if ":" not in ref:
        found = [ep for ep in entry_points(group=GROUP) if ep.name == ref]
        if not found:
            raise PluginError(
                f"{where}: no installed plugin has this name (entry-point group {GROUP}) — "
                "use module:attribute, or install the plugin's package"
            )
        try:
            return found[0].load()
        except Exception as exc:  # a broken package: say which and why, not a traceback
            raise PluginError(f"{where}: its entry point failed to load: {type(exc).__name__}: {exc}") from exc
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise PluginError(f"{where}: module {module_name!r} not found ({exc})") from exc
    except Exception as exc:
        raise PluginError(f"{where}: importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise PluginError(f"{where}: module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    return target


def _build(target: Any, options: dict[str, Any], where: str) -> Any:
    """A class or factory is called with the options; a plugin object is used as it is."""
    if inspect.isclass(target) or (callable(target) and not hasattr(target, "name")):
        try:
            return target(**options)
        except Exception as exc:
            raise PluginError(f"{where}: building it failed: {type(exc).__name__}: {exc}") from exc
    if options:
        raise PluginError(f"{where}: options given, but it is a plugin object, not a class or factory")
    return target
