"""Config profiles' pure parts (admin/profiles.py): inheritance chains, merging, checksums, flat diffs.

No I/O: profiles are plain dicts `{name, extends, settings, …}` keyed by name.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from paygate.core.domain_errors import Invalid

MAX_DEPTH = 10  # a chain longer than this is a mistake, not a design


def chain(profiles: dict[str, dict[str, Any]], name: str) -> list[str]:
    """`name` and its ancestors, root first. Invalid on a cycle, a missing parent or a chain too deep."""
    seen: list[str] = []
    current: str | None = name
    while current is not None:
        if current in seen:
            loop = " → ".join([*seen, current])
            raise Invalid(f"circular inheritance: {loop}")
        if len(seen) >= MAX_DEPTH:
            raise Invalid(f"inheritance chain of {name!r} is deeper than {MAX_DEPTH}")
        profile = profiles.get(current)
        if profile is None:
            raise Invalid(f"profile {current!r} (extended by {seen[-1]!r}) does not exist")
        seen.append(current)
        current = profile.get("extends")
    return list(reversed(seen))


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`: objects merge key by key (a child prices one more tool and keeps its parent's),
    anything else (lists, numbers, strings) is replaced whole."""
    out = dict(base)
    for key, value in top.items():
        below = out.get(key)
        out[key] = deep_merge(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return out


def merged(profiles: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """The settings of `name` with its ancestors' beneath them (root first)."""
    out: dict[str, Any] = {}
    for link in chain(profiles, name):
        out = deep_merge(out, profiles[link]["settings"])
    return out


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def checksum(settings: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of merged settings."""
    return hashlib.sha256(canonical(settings)).hexdigest()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Objects flattened to dotted keys (`toolPricing.search.creditsPerCall`); lists and scalars are leaves."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value} if prefix else {}


def diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two flattened setting sets compared key by key (each list sorted by key)."""
    only_a = {k: a[k] for k in sorted(a) if k not in b}
    only_b = {k: b[k] for k in sorted(b) if k not in a}
    both = sorted(set(a) & set(b))
    changed = {k: {"a": a[k], "b": b[k]} for k in both if canonical(a[k]) != canonical(b[k])}
    unchanged = {k: a[k] for k in both if k not in changed}
    return {"onlyInA": only_a, "onlyInB": only_b, "changed": changed, "unchanged": unchanged}
