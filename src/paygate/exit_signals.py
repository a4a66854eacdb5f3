"""Work done the moment SIGTERM / SIGINT arrives, before uvicorn's graceful shutdown starts waiting.

uvicorn, told to stop, closes its sockets and then waits (up to 30 s) for open responses to finish
*before* the app's lifespan shutdown runs. Long-lived responses — the admin SSE stream, the MCP GET
streams — would hold every stop for that long, and requests arriving on kept-alive connections
meanwhile would still be served. So the app chains the process's exit-signal handlers (uvicorn's,
installed before the lifespan starts): the signal first schedules `Runtime.on_exit_signal` actions
on the loop (mark the gateway draining, end the streams), then runs the handler it had.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

log = logging.getLogger("paygate")
EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)
Handler = Callable[[int, FrameType | None], Any]
Action = Callable[[], None]


def chain_exit_signals(actions: list[Action]) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """`(start, stop)` hooks: while started, SIGTERM/SIGINT first schedule every action in `actions`
    (read when the signal arrives) on the loop, then run the handler they had. Only from the main
    thread, and only over a Python handler (someone drains on that signal); stop puts it back."""
    installed: dict[int, tuple[Handler, Handler]] = {}

    def run_all() -> None:
        for action in list(actions):
            try:
                action()
            except Exception:  # one failed action must not keep the others from running
                log.exception("exit-signal action %r failed", action)

    async def start() -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in EXIT_SIGNALS:
            prior = signal.getsignal(sig)
            if not callable(prior):
                continue

            def chained(signum: int, frame_: FrameType | None, prior: Handler = prior) -> None:
                loop.call_soon_threadsafe(run_all)
                prior(signum, frame_)

            signal.signal(sig, chained)
            installed[sig] = (chained, prior)

    async def stop() -> None:
        for sig, (chained, prior) in installed.items():
            if signal.getsignal(sig) is chained:  # nobody replaced it since
                signal.signal(sig, prior)
        installed.clear()

    return start, stop
