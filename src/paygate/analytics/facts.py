"""What a report computes from, for one request: the key records, the call rollups over the request's
window, the audit log, groups and the gateway's configured limits. Each is read at most once per request
(reads are cached here), and the event bus is flushed first, so a report sees every call answered before it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from paygate.analytics.window import Window
from paygate.billing.service import BillingService
from paygate.core.domain_errors import NotFound
from paygate.core.keys import hash_key
from paygate.core.records import KeyRecord
from paygate.reports.keys import KeyReports
from paygate.store.audit_log import AuditEntry, AuditFilter
from paygate.store.base import Store
from paygate.store.documents import Doc
from paygate.store.rollups import Counted, Dim, Distinct, RollupQuery, RollupRow

AUDIT_READ_CAP = 100_000  # admin events read for one report (lifecycle, audit summary): the newest


@dataclass(slots=True)
class Facts:
    store: Store
    billing: BillingService
    window: Window
    started_at: float  # when this gateway started (uptime)
    priced_tools: Callable[[], list[dict[str, Any]]]
    _cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def now(self) -> float:
        return self.window.now

    def _cached(self, name: Any, compute: Callable[[], Any]) -> Any:
        if name not in self._cache:
            self._cache[name] = compute()
        return self._cache[name]

    # keys ----------------------------------------------------------------------------------------------
    def all_keys(self) -> list[KeyRecord]:
        """Every key, revoked ones included, oldest first."""
        return list(self._cached("keys", lambda: sorted(self.store.list_keys(), key=lambda k: k.created_at)))

    def live_keys(self) -> list[KeyRecord]:
        """Keys that can call: not revoked, not suspended (expired keys included: they still hold credits)."""
        return [k for k in self.all_keys() if k.active and not k.suspended]

    def key_by_hash(self) -> Mapping[str, KeyRecord]:
        """Every key by hash (the request's one map: read it, never change it)."""
        return cast(
            "Mapping[str, KeyRecord]", self._cached("by_hash", lambda: {k.key_hash: k for k in self.all_keys()})
        )

    def find_key(self, ref: str) -> KeyRecord:
        """The key a `key` filter names: the key itself or its alias, revoked keys too (their history
        counts); a 404 otherwise."""
        record = self.key_by_hash().get(hash_key(ref))
        if record is None:
            record = next((k for k in self.all_keys() if k.alias is not None and k.alias == ref), None)
        if record is None:
            raise NotFound("API key not found")
        return record

    def find_group(self, ref: str) -> str:
        """The id of the group a `group` filter names, by id or by name (any case); a 404 otherwise."""
        groups = self.groups()
        if ref in groups:
            return ref
        wanted = ref.casefold()
        named = sorted(gid for gid, doc in groups.items() if str(doc.get("name", "")).casefold() == wanted)
        if not named:
            raise NotFound("Group not found")
        return named[0]

    def reports(self) -> KeyReports:
        """Per-key reads shared with the per-key reports (rate windows, quota status, effective policy)."""
        return self._cached("key_reports", lambda: KeyReports(self.store, self.billing))  # type: ignore[no-any-return]

    # calls ---------------------------------------------------------------------------------------------
    def rollup(
        self,
        *by: Dim,
        window: Window | None = None,
        key_hash: str | None = None,
        tool: str | None = None,
        namespace: str | None = None,
        all_time: bool = False,
        timing: bool | None = None,
    ) -> list[RollupRow]:
        """The calls summed by `by`, over the request's window (or `window`, or all history). `timing`: the
        rows carry durations and the latency histogram; by default only when the query is not by key (per-key
        sums are kept without them, being many: a report that wants a key's latency asks)."""
        w = window or self.window
        keyed = "key" in by or key_hash is not None
        query = RollupQuery(
            tuple(by),
            None if all_time else w.since_hour,
            None if all_time else w.until_hour,
            key_hash,
            tool,
            namespace,
            timing=(not keyed) if timing is None else timing,
        )
        return list(self._cached(("rollup", query), lambda: self.store.rollups.query(query)))

    def count_distinct(
        self,
        *by: Dim,
        of: Distinct = "key",
        window: Window | None = None,
        namespace: str | None = None,
        tool: str | None = None,
        admitted: bool = False,
        daily: bool = False,
        among: frozenset[str] | None = None,
    ) -> Counted:
        """How many distinct keys made a call (`of="tool"`: how many tools were called by a key) per group of
        `by`, over the window; `admitted`: admitted calls only; `daily`: "hour" is the hour of the day; `among`:
        only these keys' calls. Counted by the store: reading every key's rows costs far more."""
        w = window or self.window
        query = RollupQuery(tuple(by), w.since_hour, w.until_hour, None, tool, namespace, timing=False)
        return dict(
            self._cached(
                ("distinct", query, of, admitted, daily, among),
                lambda: self.store.rollups.count_distinct(query, of, admitted=admitted, daily=daily, among=among),
            )
        )

    def totals(self, window: Window | None = None, all_time: bool = False) -> RollupRow:
        """Every call of the window summed (a row of zeros when there were none)."""
        rows = self.rollup(window=window, all_time=all_time)
        return rows[0] if rows else RollupRow(())

    # audit and documents -------------------------------------------------------------------------------
    def audit(self, *types: str, window: Window | None = None, limit: int = AUDIT_READ_CAP) -> list[AuditEntry]:
        """Audit entries of these types (all when none) in the window, newest first."""
        w = window or self.window
        where = AuditFilter(tuple(types), None, w.since, w.until)
        return list(self._cached(("audit", where, limit), lambda: self.store.audit.query(where, limit)))

    def groups(self) -> dict[str, Doc]:
        """Key groups by id (deleted ones included: history may name them)."""
        return dict(self._cached("groups", lambda: {str(d.get("id")): d for d in self.store.doc_scan("group")}))

    def global_rate_limit(self) -> int:
        return self.billing.prices.global_rate_limit
