"""Shared value rules: the credit ceiling and how times are written in answers and exports."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Final

MAX_CREDITS: Final = 10**15  # far above any real balance, far below SQLite's 2**63


def iso_time(ts: float | None) -> str | None:
    """`2025-03-16T10:30:00.123Z` (milliseconds truncated), or None."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def iso_seconds(ts: float) -> str:
    """`2025-03-16T10:30:00Z`: whole seconds (quota periods)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def iso_rounded(ts: float | None) -> str | None:
    """Milliseconds, rounded (not truncated), so export → import → export gives the same text."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
