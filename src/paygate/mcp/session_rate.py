"""`sessionRateLimit`: new MCP sessions per client address per minute.

The address is the one the rest of the gateway uses (`core.netaddr.client_ip`: the socket peer, or
behind a trusted proxy the first untrusted `X-Forwarded-For` hop). Counted in fixed one-minute
windows: an `initialize` beyond the limit gets 429 with `Retry-After` (seconds to the window's end)
and no session. The table of addresses is emptied at each new window and holds at most
`MAX_ADDRESSES`; addresses beyond it in one window are not counted (the session pools stay bounded
whatever happens here).
"""

from __future__ import annotations

import math
import time

WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 100_000


class SessionRate:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute  # 0: no limit
        self._window = 0.0
        self._counts: dict[str, int] = {}

    def retry_after(self, address: str | None, now: float | None = None) -> int | None:
        """Count one new session from `address`: None if allowed, else the seconds to wait."""
        if not self.per_minute or address is None:
            return None
        now = time.time() if now is None else now
        if now - self._window >= WINDOW_SECONDS:
            self._window = now
            self._counts.clear()
        count = self._counts.get(address, 0)
        if count >= self.per_minute:
            return max(1, math.ceil(self._window + WINDOW_SECONDS - now))
        if count or len(self._counts) < MAX_ADDRESSES:
            self._counts[address] = count + 1
        return None
