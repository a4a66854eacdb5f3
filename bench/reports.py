"""How fast are the rollup queries and the reports over a big history, and what does recording cost?

    .venv/bin/python bench/reports.py                                  # SQLite, Zipf over keys, 1M calls
    .venv/bin/python bench/reports.py --dist uniform --store redis     # the worst case, on a real redis-server
    .venv/bin/python bench/reports.py --calls 100000 --reports 0       # quicker; queries only
    .venv/bin/python bench/reports.py --state /tmp/r --only peak-usage,latency --repeat 0  # fill once, reuse

Fills a fresh store through its real API: `--keys` keys with `store.create_key` (in `--namespaces`
namespaces), then `--calls` call facts over `--days` days up to now, handed to `store.rollups.record` in
batches of 4,096 as the feed does under load (the time per fact is "record"). Keys are Zipf-distributed
(s=1.1: the top key makes ~10% of the calls) or uniform (`--dist uniform`: every key ~100 calls, the worst
case for rollups); tools are Zipf (s=1) over `--tools`; 92% of calls are admitted, the rest refused for one
of five reasons, 0.5% without a valid key; durations are exponential (mean 80 ms).

Then it times each query shape the reports ask (no range, the last 24 h / 7 days / 30 days), `--repeat`
times each (or until 3 s are spent), and, unless `--reports 0`, every report of the catalog with default
parameters through the real AnalyticsService. Prints markdown tables: p50 / p95 in ms.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `tests.redis_server` for --store redis

from paygate.analytics.feed import MAX_BATCH
from paygate.core.records import KeyRecord
from paygate.store.base import Store
from paygate.store.rollups import HOUR, CallFact, Dim, RollupQuery

SHAPES: list[tuple[Dim, ...]] = [
    ("tool",),
    ("hour",),
    ("day",),
    ("namespace",),
    ("reason",),
    ("key",),
    ("hour", "key"),
    ("key", "tool"),
    ("tool", "reason"),
    ("key", "reason"),
    (),
]
RANGES = {"all": None, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}
REASONS = ["insufficient_credits", "rate_limited", "tool_not_allowed", "quota_exceeded", "spending_limit"]
BATCH = MAX_BATCH  # what the feed writes at once under load (it holds calls for up to a second)


def zipf_weights(n: int, s: float) -> list[float]:
    return [1 / (rank**s) for rank in range(1, n + 1)]


def facts_of(args: argparse.Namespace, keys: list[KeyRecord], now: float) -> Iterator[CallFact]:
    rng = random.Random(7)
    n = args.calls
    key_weights = None if args.dist == "uniform" else zipf_weights(len(keys), 1.1)
    picked_keys = rng.choices(keys, weights=key_weights, k=n)
    tools = [f"tool_{i:02d}" for i in range(args.tools)]
    picked_tools = rng.choices(tools, weights=zipf_weights(len(tools), 1.0), k=n)
    start = now - args.days * 86400
    times = sorted(rng.uniform(start, now) for _ in range(n))  # the feed records calls as they happen
    for ts, key, tool in zip(times, picked_keys, picked_tools, strict=True):
        roll = rng.random()
        duration = rng.expovariate(1 / 80)
        if roll < 0.005:
            yield CallFact(ts, None, tool, "default", "invalid_key", duration_ms=duration)
        elif roll < 0.08:
            yield CallFact(ts, key.key_hash, tool, key.namespace, rng.choice(REASONS), duration_ms=duration)
        else:
            failed = roll > 0.99
            price = 1 + hash(tool) % 5
            yield CallFact(
                ts,
                key.key_hash,
                tool,
                key.namespace,
                "",
                credits=0 if failed else price,
                refunded=price if failed else 0,
                failed=failed,
                duration_ms=duration,
            )


@contextmanager
def opened_store(kind: str, directory: Path) -> Iterator[Store]:
    if kind == "sqlite":
        from paygate.store.sqlite import SQLiteStore

        store: Store = SQLiteStore(directory / "state.db")
        store.open()
        try:
            yield store
        finally:
            store.close()
        return
    from tests.redis_server import running_redis

    from paygate.store.redis_backend.store import RedisStore

    with running_redis() as server:
        store = RedisStore(server.url, prefix="bench" + uuid.uuid4().hex[:6])
        store.open()
        try:
            yield store
        finally:
            store.close()


def fill(store: Store, args: argparse.Namespace, now: float) -> tuple[list[KeyRecord], float]:
    """The keys and the facts; returns the keys and the seconds spent in `record` per fact."""
    keys = []
    for i in range(args.keys):
        record = KeyRecord(uuid.uuid4().hex, "pg_bench", f"{i:04d}"[-4:], f"key-{i:05d}", 1000, now - args.days * 86400)
        record.namespace = f"ns{i % args.namespaces}"
        store.create_key(record)
        keys.append(record)
    spent = 0.0
    batch: list[CallFact] = []
    for fact in facts_of(args, keys, now):
        batch.append(fact)
        if len(batch) == BATCH:
            t = time.perf_counter()
            store.rollups.record(batch)
            spent += time.perf_counter() - t
            batch = []
    if batch:
        t = time.perf_counter()
        store.rollups.record(batch)
        spent += time.perf_counter() - t
    return keys, spent / args.calls


def timed(run: Callable[[], Any], repeat: int, budget: float = 3.0) -> tuple[list[float], Any]:
    samples: list[float] = []
    out = None
    began = time.perf_counter()
    while len(samples) < repeat and (not samples or time.perf_counter() - began < budget):
        t = time.perf_counter()
        out = run()
        samples.append((time.perf_counter() - t) * 1000)
    return samples, out


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def query_table(store: Store, keys: list[KeyRecord], now: float, repeat: int) -> list[str]:
    now_hour = int(now // HOUR)
    lines = ["| query | range | rows | levels read | p50 ms | p95 ms |", "| --- | --- | ---: | --- | ---: | ---: |"]
    queries: list[tuple[str, RollupQuery]] = []
    for by in SHAPES:
        for label, hours in RANGES.items():
            since = None if hours is None else now_hour - hours + 1
            queries.append((label, RollupQuery(by, since_hour=since, timing="key" not in by)))  # as Facts asks
    for who, key in (("top key", keys[0]), ("a key", keys[len(keys) // 2])):
        for by in (("tool",), ("hour",), ("day",)):
            for label in ("all", "30d"):
                hours = RANGES[label]
                since = None if hours is None else now_hour - hours + 1
                one = RollupQuery(by, since_hour=since, key_hash=key.key_hash, timing=False)
                queries.append((f"{label}, {who}", one))
    planner = getattr(store.rollups, "plan", None)
    for label, query in queries:
        samples, rows = timed(lambda q=query: store.rollups.query(q), repeat)  # type: ignore[misc]
        levels = "+".join(p.level.name for p in planner(query)) if planner else "?"
        lines.append(
            f"| {','.join(query.by) or '(totals)'} | {label} | {len(rows)} | {levels} "
            f"| {statistics.median(samples):.1f} | {p95(samples):.1f} |"
        )
    for by, of, daily in (
        (("tool",), "key", False),
        (("day",), "key", False),
        (("hour",), "key", True),
        (("key",), "tool", False),
    ):
        for label in ("all", "30d"):
            hours = RANGES[label]
            since = None if hours is None else now_hour - hours + 1
            query = RollupQuery(by, since_hour=since, timing=False)
            samples, counted = timed(
                lambda q=query, o=of, d=daily: store.rollups.count_distinct(q, o, admitted=True, daily=d),  # type: ignore[misc]
                repeat,
            )
            shape = f"distinct {of}s by {'hour of day' if daily else by[0]}"
            lines.append(
                f"| {shape} | {label} | {len(counted)} | (count_distinct) "
                f"| {statistics.median(samples):.1f} | {p95(samples):.1f} |"
            )
    return lines


def report_table(store: Store, now: float, repeat: int, only: set[str]) -> list[str]:
    from paygate.analytics.catalog import CATALOG
    from paygate.analytics.engine import AnalyticsService
    from paygate.billing.service import BillingService
    from paygate.core.pricing import PriceBook
    from paygate.events.hub import EventHub
    from paygate.metrics import Metrics

    billing = BillingService(store, PriceBook(1, 0), Metrics(), shadow=False, refund_on_failure=False)
    service = AnalyticsService(store, billing, EventHub(), now - 3600, lambda: [], clock=lambda: now)
    lines = ["| report | p50 ms | p95 ms |", "| --- | ---: | ---: |"]
    for report in sorted(CATALOG, key=lambda r: r.name):
        if only and report.name not in only:
            continue
        params = report.params.model_validate({})
        samples, _ = timed(lambda r=report, p=params: service.run(r, p), repeat)  # type: ignore[misc]
        lines.append(f"| {report.name} | {statistics.median(samples):.1f} | {p95(samples):.1f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--dist", choices=("zipf", "uniform"), default="zipf")
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--tools", type=int, default=50)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--namespaces", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=20, help="timings per query (fewer past 3 s)")
    parser.add_argument("--reports", type=int, default=5, help="timings per report (0: no reports)")
    parser.add_argument("--only", default="", help="comma-separated report names (default: all)")
    parser.add_argument(
        "--state", type=Path, help="SQLite only: keep the store in this directory, and reuse it when it is there"
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.state is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="paygate_bench_reports_")))
        else:
            directory = args.state
            directory.mkdir(parents=True, exist_ok=True)
        reused = args.state is not None and args.store == "sqlite" and (directory / "state.db").exists()
        s = stack.enter_context(opened_store(args.store, directory))
        if reused:
            keys, now = reopen(s, directory)
            print(f"reused {directory}: {len(keys):,} keys")
        else:
            now = time.time()
            began = time.perf_counter()
            keys, per_fact = fill(s, args, now)
            (directory / "filled_at").write_text(str(now))
            print(
                f"{args.store}, {args.dist}: {args.calls:,} calls, {args.keys:,} keys, {args.tools} tools, "
                f"{args.days} days; filled in {time.perf_counter() - began:.0f} s; "
                f"record: {per_fact * 1e6:.1f} µs per fact ({per_fact * BATCH * 1000:.2f} ms per batch of {BATCH})"
            )
        if args.store == "sqlite":
            size = sum(f.stat().st_size for f in directory.glob("state.db*"))
            print(f"state file: {size / 1e6:.0f} MB")
        if args.repeat:
            print()
            print("\n".join(query_table(s, keys, now, args.repeat)))
        if args.reports:
            print()
            only = {name for name in args.only.split(",") if name}
            print("\n".join(report_table(s, now, args.reports, only)))
    return 0


def reopen(store: Store, directory: Path) -> tuple[list[KeyRecord], float]:
    """A store `fill` filled before: its keys in creation order (the top of the Zipf first), and its `now`."""
    keys = sorted(store.list_keys(), key=lambda k: k.name)
    return keys, float((directory / "filled_at").read_text())


if __name__ == "__main__":
    sys.exit(main())
