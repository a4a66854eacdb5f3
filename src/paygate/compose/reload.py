"""Config hot reload wired (admin/reload.py, docs/reload.md): the service over the running Settings and
the participants the builders registered (`Runtime.on_reload`), its route, and SIGHUP.

SIGHUP (and, with `--watch-config`, a change of the file) reloads from the startup config file, like
POST /config/reload without a body; the outcome is logged. Each instance of a Redis fleet reloads only
itself: signal (or POST to) every instance.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.admin.profiles import ConfigProfiles
from paygate.admin.reload import Commit, ConfigReloader, Participant, ReloadRefused
from paygate.admin.reload_file import FileWatch
from paygate.admin.routes import profiles as profile_routes
from paygate.admin.routes import reload as reload_routes
from paygate.config import Settings, sources_of
from paygate.runtime import Runtime
from paygate.traffic.cache import ResponseCache
from paygate.traffic.timeouts import Timeouts

log = logging.getLogger("paygate")


def reload_routers(rt: Runtime) -> dict[str, APIRouter]:
    reloader = ConfigReloader(rt.settings, sources_of(rt.settings), rt.events, rt.on_reload)
    watch_sighup(rt, reloader)
    if rt.settings.watch_config:
        watch_file(rt, reloader)
    profiles = ConfigProfiles(rt.store, rt.events, reloader)

    async def restore() -> None:  # every builder has registered its participant by now
        profiles.restore()

    rt.on_start.insert(0, restore)  # before background work starts on the file's settings
    rt.metrics.registry.register(ProfileCollector(profiles))
    return {
        "config_reload": reload_routes.router(rt.guard, reloader),
        "config_profiles": profile_routes.router(rt.guard, profiles),
    }


class ProfileCollector(Collector):
    """Config profiles on /metrics, read at scrape time (nothing on the call path)."""

    def __init__(self, profiles: ConfigProfiles) -> None:
        self.profiles = profiles

    def collect(self) -> Iterable[Metric]:
        p = self.profiles
        yield GaugeMetricFamily("paygate_config_profiles", "Config profiles stored", value=len(p.profiles()))
        yield CounterMetricFamily(
            "paygate_config_profile_activations",
            "Config profile activations and rollbacks applied",
            value=p.activations,
        )
        yield CounterMetricFamily(
            "paygate_config_profile_activation_failures",
            "Config profile activations refused (nothing changed)",
            value=p.failures,
        )


def follow_tool_timeouts(timeouts: Timeouts) -> Participant:
    """`toolPricing[t].timeoutMs` follows a reload (unless an admin set the timeouts: traffic/timeouts.py)."""

    def prepare(s: Settings, changed: frozenset[str]) -> Commit | None:
        if "toolPricing" not in changed:
            return None
        return timeouts.follow_config({t: p.timeout_ms for t, p in s.tool_pricing.items() if p.timeout_ms})

    return prepare


def follow_tool_cache(cache: ResponseCache) -> Participant:
    """`toolPricing[t].cacheTtlSeconds` and `cacheShared` follow a reload (traffic/cache.py)."""

    def prepare(s: Settings, changed: frozenset[str]) -> Commit | None:
        if "toolPricing" not in changed:
            return None
        pricing = s.tool_pricing
        ttls = {t: p.cache_ttl_seconds for t, p in pricing.items() if p.cache_ttl_seconds is not None}
        return cache.follow_config(ttls, frozenset(t for t, p in pricing.items() if p.cache_shared))

    return prepare


def run_logged(reloader: ConfigReloader, source: str, tasks: set[asyncio.Task[None]]) -> None:
    """Start a reload on the running loop; `tasks` holds it until done (the loop keeps weak references)."""
    task = asyncio.get_running_loop().create_task(reload_logged(reloader, source))
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def watch_file(rt: Runtime, reloader: ConfigReloader) -> None:
    """`--watch-config`: the startup config file is looked at on each tick (about once a second) and
    reloaded, as by SIGHUP, once a change has held still for a tick."""
    path = reloader.default_path
    if not path:
        log.warning("--watch-config: the gateway was started without a config file; nothing is watched")
        return
    watch, tasks = FileWatch(path), set[asyncio.Task[None]]()

    def look(_: float) -> None:
        if watch.changed():
            run_logged(reloader, "watch", tasks)

    rt.tickers.append(look)


async def reload_logged(reloader: ConfigReloader, source: str) -> None:
    """A reload nobody waits on (a signal): its outcome goes to the log."""
    try:
        answer = await reloader.reload(None, "system", source)
    except ReloadRefused as exc:
        log.warning("config reload (%s) refused, nothing changed: %s", source, exc.message)
        return
    except Exception:  # a bug must not take the gateway down with it
        log.exception("config reload (%s) failed", source)
        return
    log.info(
        "config reload (%s): %s; changed %s, skipped %s%s",
        source,
        answer["message"],
        answer["changed"] or "nothing",
        answer["skipped"] or "nothing",
        "".join(f"\n  warning: {w}" for w in answer["warnings"]),
    )


def hold_sighup(signum: int, frame: Any) -> None:
    """`wrap`'s SIGHUP handler while it starts and stops (cli.py): nothing happens (the default would end
    the process). The reload handler replaces only this one, so an embedding program's SIGHUP stays its own."""


def watch_sighup(rt: Runtime, reloader: ConfigReloader) -> None:
    """SIGHUP → reload, from the lifespan's start to its stop, in `wrap` only (its `hold_sighup` is there;
    an embedded gateway, or the tests' in-process one on another thread, leaves the process's signals
    alone). After the stop a SIGHUP is held again until the process exits."""
    sighup = getattr(signal, "SIGHUP", None)
    installed: list[asyncio.AbstractEventLoop] = []
    tasks: set[asyncio.Task[None]] = set()

    def on_signal() -> None:
        run_logged(reloader, "sighup", tasks)

    async def start() -> None:
        if sighup is None or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(sighup) is not hold_sighup:
            return
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(sighup, on_signal)
        installed.append(loop)

    async def stop() -> None:
        for loop in installed:
            loop.remove_signal_handler(sighup)  # type: ignore[arg-type]
            signal.signal(sighup, hold_sighup)  # type: ignore[arg-type]
        installed.clear()

    rt.on_start.append(start)
    rt.on_stop.append(stop)
