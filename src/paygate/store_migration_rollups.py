"""The call rollups' part of `paygate-mcp migrate-store`: copy them, count them, check the copy.

The source is read at its finest level (`RollupQuery(BASE)`: one row per hour, key, tool, namespace and reason,
with every measure, timings included) a range of hours at a time, and the rows go to the destination's own
`record_sums`, which adds them to each of its levels: the coarse levels are rebuilt from the same sums, never
copied. A rotated key's rows are copied as its successor's (`moved`): where it is already so (SQLite moves them
at rotation; Redis answers them so) they carry over unchanged.

The check: the destination's totals per key, per tool and overall (calls, allowed, denied, failed, credits,
refunded; overall also the latency histogram and the summed duration) equal what was read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from paygate.store.history import CHUNK, chunks
from paygate.store.rollups import BASE, BUCKETS, CallRollups, RollupQuery, RollupRow

COUNTS = ("calls", "allowed", "denied", "failed", "credits", "refunded")
Counts = tuple[int, int, int, int, int, int]


def counts_of(row: RollupRow) -> Counts:
    return (row.calls, row.allowed, row.denied, row.failed, row.credits, row.refunded)


def _plus(a: Counts, b: Counts) -> Counts:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4], a[5] + b[5])


ZERO: Counts = (0, 0, 0, 0, 0, 0)


@dataclass
class RollupTally:
    """What was read (or found): the base rows' number, and their totals per key, per tool and overall."""

    rows: int = 0
    by_key: dict[str | None, Counts] = field(default_factory=dict)
    by_tool: dict[str, Counts] = field(default_factory=dict)
    overall: Counts = ZERO
    duration_ms: float = 0.0
    latency: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    @property
    def calls(self) -> int:
        return self.overall[0]

    def add(self, row: RollupRow) -> None:
        """One base row (group: hour, key, tool, namespace, reason)."""
        key, tool = row.group[1], str(row.group[2])
        n = counts_of(row)
        self.rows += 1
        held = None if key is None else str(key)
        self.by_key[held] = _plus(self.by_key.get(held, ZERO), n)
        self.by_tool[tool] = _plus(self.by_tool.get(tool, ZERO), n)
        self.overall = _plus(self.overall, n)
        self.duration_ms += row.duration_ms
        self.latency = [a + b for a, b in zip(self.latency, row.latency, strict=True)]


def hour_ranges(rollups: CallRollups, calls_per_range: int = CHUNK) -> Iterator[tuple[int, int]]:
    """The hours holding any call, in ranges of about `calls_per_range` calls (a base row holds at least one call,
    so a range reads at most that many rows, or one hour's); one cheap query (the hourly totals) finds them."""
    hours = sorted((int(r.group[0] or 0), r.calls) for r in rollups.query(RollupQuery(("hour",), timing=False)))
    first: int | None = None
    last = held = 0
    for hour, calls in hours:
        if first is not None and held + calls > calls_per_range:
            yield first, last
            first = None
        if first is None:
            first, held = hour, 0
        last, held = hour, held + calls
    if first is not None:
        yield first, last


def copy_rollups(
    src: CallRollups, write: Callable[[Sequence[RollupRow]], None] | None, moved: dict[str, str]
) -> RollupTally:
    """Every base row of `src` into `write` (None: only counted), a range of hours at a time; what was read."""
    tally = RollupTally()
    for first, last in hour_ranges(src):
        rows = src.query(RollupQuery(BASE, since_hour=first, until_hour=last))
        rows = [_followed(row, moved) for row in rows]
        for row in rows:
            tally.add(row)
        if write is not None:
            for chunk in chunks(rows):
                write(chunk)
    return tally


def _followed(row: RollupRow, moved: dict[str, str]) -> RollupRow:
    key = row.group[1]
    if not isinstance(key, str) or key not in moved:
        return row
    return replace(row, group=(row.group[0], moved[key], *row.group[2:]))


def found_in(rollups: CallRollups) -> RollupTally:
    """The destination's totals, from its own coarse levels (what the reports read)."""
    found = RollupTally()
    for row in rollups.query(RollupQuery(("key",), timing=False)):
        key = row.group[0]
        found.by_key[key if key is None else str(key)] = counts_of(row)
    for row in rollups.query(RollupQuery(("tool",), timing=False)):
        found.by_tool[str(row.group[0])] = counts_of(row)
    for row in rollups.query(RollupQuery(())):
        found.overall, found.duration_ms, found.latency = counts_of(row), row.duration_ms, list(row.latency)
    return found


def verify_rollups(rollups: CallRollups, source: RollupTally) -> list[str]:
    """The destination's rollups against what was read from the source: each difference, named."""
    found = found_in(rollups)
    keys = {
        _key_label(k): (found.by_key.get(k, ZERO), source.by_key.get(k, ZERO)) for k in {*found.by_key, *source.by_key}
    }
    tools = {
        f"tool {t}": (found.by_tool.get(t, ZERO), source.by_tool.get(t, ZERO))
        for t in {*found.by_tool, *source.by_tool}
    }
    compared = {
        **dict(sorted(keys.items())),
        **dict(sorted(tools.items())),
        "all calls": (found.overall, source.overall),
    }
    mismatches = [
        f"rollups of {label}: {'/'.join(COUNTS)} {_slash(got)} in the destination, the source had {_slash(want)}"
        for label, (got, want) in compared.items()
        if got != want
    ]
    close = math.isclose(found.duration_ms, source.duration_ms, rel_tol=1e-9, abs_tol=1e-6)
    if found.latency != source.latency or not close:
        mismatches.append(
            f"rollups of all calls: latency buckets {found.latency} and {found.duration_ms:.3f} ms in the destination, "
            f"the source had {source.latency} and {source.duration_ms:.3f} ms"
        )
    return mismatches


def _key_label(key: str | None) -> str:
    return "calls without a key" if key is None else f"key {key[:12]}…"


def _slash(counts: Counts) -> str:
    return "/".join(str(n) for n in counts)
