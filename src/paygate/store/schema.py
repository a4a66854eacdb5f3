"""Versioned SQLite schema. Append a migration; never edit a shipped one."""

from __future__ import annotations

# The measures of every rollup table (sqlite_rollups.MEASURES reads them in this order); l0..l11 count calls
# per latency bucket (rollups.LATENCY_BOUNDS_MS). Frozen with migration 5: a change needs a new migration.
_MEASURES = (
    "calls",
    "allowed",
    "denied",
    "failed",
    "credits",
    "refunded",
    "duration_ms",
    *(f"l{i}" for i in range(12)),
)


_COUNTS = _MEASURES[:6]  # what a level without timings keeps (sqlite_rollups.COUNTS)


def _rollup_table(name: str, time: str | None, dims: tuple[str, ...], timing: bool = True) -> str:
    """A rollup table: `time` (hour, day, or None for all time) and `dims` as its primary key, the measures
    (without the timings when `timing` is False)."""
    key = ((time,) if time else ()) + dims
    columns = [f"{c} INTEGER NOT NULL" if c in ("hour", "day") else f"{c} TEXT NOT NULL" for c in key]
    measures = _MEASURES if timing else _COUNTS
    columns += [f"{m} REAL NOT NULL" if m == "duration_ms" else f"{m} INTEGER NOT NULL" for m in measures]
    return f"CREATE TABLE {name} ({', '.join(columns)}, PRIMARY KEY ({', '.join(key)})) WITHOUT ROWID"


def _rollup_fill(name: str, time: str | None, dims: tuple[str, ...], timing: bool = True) -> str:
    """A coarser rollup table filled from `call_rollup`."""
    select = ([{"hour": "hour", "day": "hour / 24"}[time]] if time else []) + list(dims)
    columns = ([time] if time else []) + list(dims)
    measures = _MEASURES if timing else _COUNTS
    return (
        f"INSERT INTO {name} ({', '.join(columns + list(measures))}) "
        f"SELECT {', '.join(select + [f'SUM({m})' for m in measures])} FROM call_rollup "
        f"GROUP BY {', '.join(select)}"
    )


MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE keys (
            key_hash TEXT PRIMARY KEY,
            prefix TEXT NOT NULL,
            last4 TEXT NOT NULL,
            name TEXT NOT NULL,
            credits INTEGER NOT NULL CHECK (credits >= 0),
            created_at REAL NOT NULL,
            total_spent INTEGER NOT NULL DEFAULT 0,
            total_calls INTEGER NOT NULL DEFAULT 0,
            last_used_at REAL,
            active INTEGER NOT NULL DEFAULT 1,
            suspended INTEGER NOT NULL DEFAULT 0,
            expires_at REAL,
            namespace TEXT NOT NULL DEFAULT 'default',
            spending_limit INTEGER NOT NULL DEFAULT 0,
            alias TEXT UNIQUE,
            doc TEXT NOT NULL DEFAULT '{}'
        )""",
        """CREATE TABLE ledger (
            id INTEGER PRIMARY KEY,  -- a rowid alias: no AUTOINCREMENT bookkeeping on the hot path
            ts REAL NOT NULL,
            key_hash TEXT NOT NULL REFERENCES keys(key_hash),
            delta INTEGER NOT NULL,
            kind TEXT NOT NULL,
            balance_after INTEGER NOT NULL,
            memo TEXT
        )""",
        "CREATE INDEX ledger_key ON ledger(key_hash)",
        """CREATE TABLE usage (
            id INTEGER PRIMARY KEY,  -- a rowid alias: no AUTOINCREMENT bookkeeping on the hot path
            ts REAL NOT NULL,
            key_hash TEXT NOT NULL,
            key_masked TEXT NOT NULL,
            key_name TEXT NOT NULL,
            tool TEXT NOT NULL,
            credits INTEGER NOT NULL,
            allowed INTEGER NOT NULL,
            deny_reason TEXT,
            namespace TEXT NOT NULL DEFAULT 'default',
            request_id TEXT
        )""",
        "CREATE INDEX usage_ts ON usage(ts)",
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    (
        # Small JSON documents by kind (groups, teams, templates, admin keys, plans, schedules…).
        "CREATE TABLE docs (kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id))",
    ),
    (
        # The durable audit log (store/sqlite_audit.py): every published event, keys already masked.
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY,  -- a rowid alias: insertion order, newest = highest
            ts REAL NOT NULL,
            type TEXT NOT NULL,
            actor TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX audit_ts ON audit(ts)",
        "CREATE INDEX audit_type ON audit(type)",
    ),
    (
        # Webhook delivery (store/sqlite_outbox.py, the Outbox role): events waiting to be batched, per destination;
        # batches being delivered or waiting to be retried (the exact body is kept, so a retry sends
        # the same bytes); batches that ran out of retries.
        """CREATE TABLE webhook_outbox (
            id INTEGER PRIMARY KEY,
            dest TEXT NOT NULL,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,  -- 'usage' or 'admin': which array of the payload the event goes in
            type TEXT NOT NULL,
            event TEXT NOT NULL
        )""",
        "CREATE INDEX webhook_outbox_dest ON webhook_outbox(dest, id)",
        """CREATE TABLE webhook_batches (
            id INTEGER PRIMARY KEY,
            dest TEXT NOT NULL,
            body TEXT NOT NULL,
            event_count INTEGER NOT NULL,
            event_types TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 0,
            next_at REAL NOT NULL,
            created REAL NOT NULL,
            last_error TEXT
        )""",
        """CREATE TABLE webhook_dead_letters (
            id INTEGER PRIMARY KEY,
            dest TEXT NOT NULL,
            body TEXT NOT NULL,
            event_count INTEGER NOT NULL,
            event_types TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            created REAL NOT NULL,
            failed_at REAL NOT NULL,
            last_error TEXT,
            last_status INTEGER NOT NULL DEFAULT 0
        )""",
    ),
    (
        # Call rollups (store/sqlite_rollups.py, the CallRollups role): every gated call summed per UTC hour,
        # key ('' when none), tool, namespace and outcome ('' when admitted), with a latency histogram; and the
        # same sums at coarser levels, kept by the same transactions, so a report reads few rows.
        _rollup_table("call_rollup", "hour", ("key_hash", "tool", "namespace", "reason")),
        "CREATE INDEX call_rollup_key ON call_rollup(key_hash, hour)",
        _rollup_table("rollup_hour", "hour", ("tool", "namespace", "reason")),
        _rollup_table("rollup_hour_ns", "hour", ("namespace", "reason")),
        _rollup_table("rollup_day", "day", ("tool", "namespace", "reason")),
        _rollup_table("rollup_day_ns", "day", ("namespace", "reason")),
        _rollup_table("rollup_key_day", "day", ("key_hash", "namespace", "reason"), timing=False),
        _rollup_table("rollup_tool", None, ("tool", "namespace", "reason")),
        _rollup_table("rollup_key", None, ("key_hash", "namespace", "reason"), timing=False),
        _rollup_table("rollup_key_tool", None, ("key_hash", "tool", "namespace", "reason"), timing=False),
        # History from before the rollups: the usage rows summed (durations, failures and refunds unknown: 0).
        f"""INSERT INTO call_rollup (hour, key_hash, tool, namespace, reason, {", ".join(_MEASURES)})
            SELECT CAST(ts / 3600 AS INTEGER) AS h, key_hash, tool, namespace,
                CASE WHEN allowed THEN COALESCE(deny_reason, '') ELSE COALESCE(deny_reason, 'unknown') END AS r,
                COUNT(*), SUM(allowed != 0), SUM(allowed = 0), 0, SUM(CASE WHEN allowed THEN credits ELSE 0 END),
                0, 0.0, COUNT(*), {", ".join("0" * (len(_MEASURES) - 8))}
            FROM usage GROUP BY h, key_hash, tool, namespace, r""",
        _rollup_fill("rollup_hour", "hour", ("tool", "namespace", "reason")),
        _rollup_fill("rollup_hour_ns", "hour", ("namespace", "reason")),
        _rollup_fill("rollup_day", "day", ("tool", "namespace", "reason")),
        _rollup_fill("rollup_day_ns", "day", ("namespace", "reason")),
        _rollup_fill("rollup_key_day", "day", ("key_hash", "namespace", "reason"), timing=False),
        _rollup_fill("rollup_tool", None, ("tool", "namespace", "reason")),
        _rollup_fill("rollup_key", None, ("key_hash", "namespace", "reason"), timing=False),
        _rollup_fill("rollup_key_tool", None, ("key_hash", "tool", "namespace", "reason"), timing=False),
    ),
    (
        # A key's durations and latency histogram over all history (the latency report ranks keys by their
        # average): rebuilt from call_rollup, whose sums every coarser level equals.
        "DROP TABLE rollup_key",
        _rollup_table("rollup_key", None, ("key_hash", "namespace", "reason")),
        _rollup_fill("rollup_key", None, ("key_hash", "namespace", "reason")),
    ),
    (
        # Money moves applied at most once per outside id (store/once.py: a Stripe event's id), recorded in the
        # move's transaction: what was asked for and what moved (a take-back moves at most the balance).
        """CREATE TABLE once_moves (
            once_id TEXT PRIMARY KEY,
            key_hash TEXT NOT NULL,
            requested INTEGER NOT NULL,
            moved INTEGER NOT NULL,
            ts REAL NOT NULL
        )""",
    ),
]
