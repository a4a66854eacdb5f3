"""Failed admin authentications per client address (`authFailureLimit`).

Each address has a window of `window` seconds that opens at its first failed attempt. Once it has
`limit` failures in that window, every admin request from it is refused (429, `Retry-After` = what is
left of the window) until the window ends, **even one with a correct key**: a throttled address gets no
answer that tells a right key from a wrong one, and its requests cost no key lookup and no audit row
(only the first refusal of a window is published, as `admin.auth_throttled`; the rest are counted).

The table is bounded: at most `max_addresses` windows, the oldest evicted first. IPv6 addresses are
counted per /64 (one host usually holds a whole /64, so one address each would be free to change).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from paygate.core.domain_errors import TooMany
from paygate.core.netaddr import parse_ip

WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 10_000


class AuthThrottled(TooMany):
    """Too many failed admin authentications from this address; `retry_after` seconds left."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed admin authentications from this address: try again in {retry_after} s",
            retryAfterSeconds=retry_after,
        )
        self.retry_after = retry_after


@dataclass(slots=True)
class _Window:
    start: float
    failures: int
    announced: bool = False


def address_key(address: str | None) -> str:
    """What an address is counted under: IPv4 as is, IPv6 by its /64, anything else as given."""
    if address is None:
        return "unknown"
    ip = parse_ip(address)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip) if ip is not None else address


class AuthThrottle:
    def __init__(
        self,
        limit: int,
        *,
        window: float = WINDOW_SECONDS,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit  # 0 = no limit
        self.window = window
        self.max_addresses = max_addresses
        self.clock = clock  # replaceable by tests
        self._windows: OrderedDict[str, _Window] = OrderedDict()  # oldest window first
        self.failures = 0  # failed attempts counted (metric)
        self.throttled = 0  # attempts refused while throttled (metric)

    def __len__(self) -> int:
        return len(self._windows)

    def throttled_now(self, address: str | None) -> bool:
        """Whether `address` is refused at the moment (counts nothing)."""
        if not self.limit:
            return False
        w = self._windows.get(address_key(address))
        return w is not None and w.failures >= self.limit and self.clock() < w.start + self.window

    def refuse(self, address: str | None) -> tuple[int, bool] | None:
        """None when `address` may try; else (seconds until its window ends, whether this is the first
        refusal of the window: the caller publishes that one)."""
        if not self.limit:
            return None
        key = address_key(address)
        w = self._windows.get(key)
        if w is None or w.failures < self.limit:
            return None
        left = w.start + self.window - self.clock()
        if left <= 0:
            del self._windows[key]
            return None
        self.throttled += 1
        first = not w.announced
        w.announced = True
        return max(1, math.ceil(left)), first

    def failed(self, address: str | None) -> None:
        """Count one failed authentication from `address`."""
        self.failures += 1
        if not self.limit:
            return
        key = address_key(address)
        now = self.clock()
        w = self._windows.get(key)
        if w is not None and now < w.start + self.window:
            w.failures += 1
            return
        if w is not None:
            del self._windows[key]
        self._windows[key] = _Window(now, 1)
        while len(self._windows) > self.max_addresses:
            self._windows.popitem(last=False)
