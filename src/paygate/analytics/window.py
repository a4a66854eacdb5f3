"""The time range a report covers: `since` / `until` from the query string, counted in whole UTC hours.

The rollups sum calls per hour, so a range is widened to the hours it touches: `since` is rounded down to
its hour and `until` is taken to the end of its hour. Without `since` a report covers all recorded history;
without `until`, up to now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from paygate.core.domain_errors import Invalid
from paygate.store.rollups import DAY, HOUR, hour_of

MAX_SPAN_DAYS = 3660  # a range longer than ten years is a typo


def parse_instant(name: str, value: str | None) -> float | None:
    """An ISO 8601 date or date-time (UTC when it names no zone) as a Unix time, or `Invalid` (a 400)."""
    if value is None:
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Invalid(f"Invalid request: {name} must be an ISO 8601 date or date-time") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True, slots=True)
class Window:
    """`since` / `until` as given (Unix times, None when not given) and `now`."""

    now: float
    since: float | None = None
    until: float | None = None

    @classmethod
    def parse(cls, now: float, since: str | None, until: str | None) -> Window:
        start, end = parse_instant("since", since), parse_instant("until", until)
        if start is not None and end is not None and start > end:
            raise Invalid("Invalid request: since must not be after until")
        if start is not None and (end if end is not None else now) - start > MAX_SPAN_DAYS * DAY:
            raise Invalid(f"Invalid request: a range spans at most {MAX_SPAN_DAYS} days")
        return cls(now, start, end)

    @property
    def since_hour(self) -> int | None:
        return None if self.since is None else hour_of(self.since)

    @property
    def until_hour(self) -> int | None:
        return None if self.until is None else hour_of(self.until)

    @property
    def end(self) -> float:
        """Where the range ends: `until`, else now."""
        return self.until if self.until is not None else self.now

    def last_hours(self, hours: int) -> Window:
        """The `hours` whole hours up to the end of the range (the current hour included), within the range."""
        first = (hour_of(self.end) - hours + 1) * HOUR
        since = first if self.since is None else max(first, self.since)
        return Window(self.now, since, self.until)

    def hours(self, first: int | None = None) -> list[int]:
        """Every hour of the range, oldest first (from `first` when the range has no start)."""
        start = self.since_hour if self.since_hour is not None else first
        if start is None:
            return []
        return list(range(start, hour_of(self.end) + 1))

    def echo(self) -> dict[str, str | None]:
        """The range as reports state it back: ISO 8601, whole hours."""
        return {
            "since": None if self.since is None else iso_hour(hour_of(self.since)),
            "until": None if self.until is None else iso_hour(hour_of(self.until) + 1),
        }


def iso_hour(hour: int) -> str:
    """An hour (hours since the epoch) as ISO 8601 in UTC: `2026-02-26T14:00:00.000Z`."""
    return datetime.fromtimestamp(hour * HOUR, UTC).strftime("%Y-%m-%dT%H:00:00.000Z")


def short_hour(hour: int) -> str:
    """An hour as the reference's trend buckets name it: `2026-02-26T14`."""
    return datetime.fromtimestamp(hour * HOUR, UTC).strftime("%Y-%m-%dT%H")


def iso_day(day: int) -> str:
    """A day (days since the epoch) as `2026-02-26`."""
    return datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d")
