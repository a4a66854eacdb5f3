"""Versioned SQLite schema. Append a migration; never edit a shipped one."""

from __future__ import annotations

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
        # key ('' when none), tool, namespace and outcome ('' when admitted), with a latency histogram.
        """CREATE TABLE call_rollup (
            hour INTEGER NOT NULL,
            key_hash TEXT NOT NULL,
            tool TEXT NOT NULL,
            namespace TEXT NOT NULL,
            reason TEXT NOT NULL,
            calls INTEGER NOT NULL,
            allowed INTEGER NOT NULL,
            denied INTEGER NOT NULL,
            failed INTEGER NOT NULL,
            credits INTEGER NOT NULL,
            refunded INTEGER NOT NULL,
            duration_ms REAL NOT NULL,
            l0 INTEGER NOT NULL, l1 INTEGER NOT NULL, l2 INTEGER NOT NULL, l3 INTEGER NOT NULL,  -- calls per
            l4 INTEGER NOT NULL, l5 INTEGER NOT NULL, l6 INTEGER NOT NULL, l7 INTEGER NOT NULL,  -- latency bucket
            l8 INTEGER NOT NULL, l9 INTEGER NOT NULL, l10 INTEGER NOT NULL, l11 INTEGER NOT NULL,  -- (rollups.py)
            PRIMARY KEY (hour, key_hash, tool, namespace, reason)
        ) WITHOUT ROWID""",
        "CREATE INDEX call_rollup_key ON call_rollup(key_hash, hour)",
    ),
]
