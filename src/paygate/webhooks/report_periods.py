"""UTC period bounds of scheduled reports (webhooks/scheduled.py): days, ISO weeks (Monday first), months."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

Frequency = Literal["daily", "weekly", "monthly"]
FREQUENCIES: tuple[Frequency, ...] = ("daily", "weekly", "monthly")


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def period_start(frequency: str, ts: float) -> float:
    """The start of the period that contains `ts`."""
    day = _dt(ts).replace(hour=0, minute=0, second=0, microsecond=0)
    if frequency == "weekly":
        day -= timedelta(days=day.weekday())
    elif frequency == "monthly":
        day = day.replace(day=1)
    return day.timestamp()


def next_start(frequency: str, start: float) -> float:
    """The start of the period after the one starting at `start`."""
    day = _dt(start)
    if frequency == "daily":
        return (day + timedelta(days=1)).timestamp()
    if frequency == "weekly":
        return (day + timedelta(days=7)).timestamp()
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return day.replace(year=year, month=month, day=1).timestamp()


def last_complete(frequency: str, now: float) -> float:
    """The start of the last period that has ended by `now`."""
    current = period_start(frequency, now)
    return period_start(frequency, current - 1)
