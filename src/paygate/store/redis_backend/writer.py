"""The hot path's charges, sent to Redis from the event loop in batches.

A tool call's charge is decided on this process's copy of the balance (store/redis_backend/mirror.py),
held there, and queued here; the caller awaits its future before forwarding the call. One task takes
everything queued, sends it as one batch of the `c` lane (one script, one round trip, however many charges)
on its own connection (resp.py), and settles each future: done, or `ChargeRefused` when Redis refused it
(another instance spent the credits or the quota first), or `ChargeNotRecorded` when Redis could not be
reached. One batch is in flight at a time; what arrives meanwhile forms the next.

A batch whose reply is lost is sent once more with the same number (Redis answers a repeat from memory);
if that fails too, the batch is *doubtful* and the task settles it once Redis is back (scripts.FENCE): if it
had been applied, its charges are refunded (their calls were never forwarded), until the refund is
confirmed; then the lane goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from paygate.core.records import UsageEvent
from paygate.store.errors import ChargeNotRecorded, StoreUnavailable
from paygate.store.redis_backend.codec import adjust_op
from paygate.store.redis_backend.lanes import Reply, fenced
from paygate.store.redis_backend.names import Names
from paygate.store.redis_backend.resp import ReplyError, RespConnection, connect
from paygate.store.redis_backend.scripts import FENCE, MONEY, TELL

log = logging.getLogger("paygate.store")

NOT_FORWARDED = "not forwarded: redis connection lost"
MAX_BACKOFF = 1.0
# Other instances hear of this one's charges at most this often (scripts.TELL says the rest): a message
# per batch woke every listener per call, measured at a third of the throughput at one connection.
TELL_EVERY = 0.02
LOST = (ConnectionError, OSError, TimeoutError)


@dataclass(slots=True)
class Held:
    """One queued operation: a charge (or batch of charges) on one key, or a usage row alone."""

    key_hash: str
    credits: int
    calls: int
    op: list[str]
    future: asyncio.Future[None] | None
    ts: float
    events: tuple[UsageEvent, ...]  # the usage rows it writes (reads show them before Redis has them)
    team_id: str | None = None  # a refund of it gives the call back to the team's quota too


Outcome = Reply | StoreUnavailable


class Link:
    """Whether Redis is reachable, as the last attempt found it (writer, listener and store share one)."""

    def __init__(self) -> None:
        self.up = True
        self.wake = threading.Event()  # set to cut the listener's back-off short (closing)


class ChargeWriter:
    def __init__(
        self,
        url: str,
        names: Names,
        instance: str,
        usage_cap: int,
        link: Link,
        settle: Callable[[list[Held], Outcome], None],
    ) -> None:
        self.url = url
        self.names = names
        self.lane = f"{instance}:c"
        self.instance = instance
        self.usage_cap = str(usage_cap)
        self.link = link
        self._settle = settle
        self.seq = 0
        self.doubtful: int | None = None
        self.queue: list[Held] = []
        self.sending: list[Held] = []
        self.in_flight: set[str] = set()
        self._conn: RespConnection | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._shas = {script: hashlib.sha1(script.encode()).hexdigest() for script in (MONEY, FENCE, TELL)}
        self._told = 0.0  # when a batch last published its balances
        self._untold: set[str] = set()  # keys moved since, not yet told
        self._telling: asyncio.TimerHandle | None = None

    def submit(self, held: Held) -> None:
        """Queue `held` (on the event loop); the writer's task sends it with whatever else is queued."""
        self.queue.append(held)
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())
        assert self._wake is not None
        self._wake.set()

    def unsent(self) -> list[Held]:
        """Everything decided here that Redis may not hold yet: queued, and the batch in flight."""
        return [*self.sending, *self.queue]

    def close(self) -> None:
        """Stop: calls still waiting for their charge are refused (not forwarded, not charged)."""
        if self._task is not None:
            if not self._task.get_loop().is_closed():
                self._task.cancel()
            self._task = None
        left, self.queue = self.queue, []
        for held in left:
            if held.future is not None and not held.future.done():
                held.future.set_exception(ChargeNotRecorded("the gateway is stopping"))
        if self._telling is not None:
            self._telling.cancel()
            self._telling = None
        if self._conn is not None:
            if not self._conn.loop.is_closed():  # a loop that has ended took its sockets with it
                self._conn.close()
            self._conn = None

    # the task ------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._pump()
        finally:  # cancelled (the store closes, or the loop ends): the connection goes with the task
            if self._conn is not None and not self._conn.loop.is_closed():
                self._conn.close()
            self._conn = None

    async def _pump(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.queue:
                batch, self.queue = self.queue, []
                self.sending = batch
                self.in_flight = {h.key_hash for h in batch if h.future is not None}
                try:
                    outcome: Outcome = await self._send(batch)
                finally:
                    self.sending = []
                try:
                    self._settle(batch, outcome)
                finally:
                    self.in_flight = set()
                if isinstance(outcome, StoreUnavailable):
                    await self._recover(batch, outcome)

    async def _send(self, batch: Sequence[Held]) -> Outcome:
        self.seq += 1
        try:
            reply = await self._money([h.op for h in batch], self.seq, [h.key_hash for h in batch if h.future])
            self.link.up = True
            return reply
        except LOST as exc:
            self.doubtful = self.seq
            self.link.up = False
            return StoreUnavailable(f"redis unreachable: {exc}")
        except ReplyError as exc:  # the script failed (a bug): refused, and the fence settles the batch
            log.error("redis: a batch of charges failed: %s", exc)
            self.doubtful = self.seq
            return StoreUnavailable(f"redis refused the batch: {exc}")

    async def _money(self, ops: Sequence[Sequence[str]], seq: int, keys: Sequence[str] = ()) -> Reply:
        loop = asyncio.get_running_loop()
        tell = loop.time() - self._told >= TELL_EVERY
        if tell:
            self._told = loop.time()
        elif keys:
            self._untold.update(keys)
            if self._telling is None:
                self._telling = loop.call_later(TELL_EVERY, self._tell_soon)
        args = [self.names.base, self.lane, str(seq), self.usage_cap, self.instance, "1" if tell else "0"]
        for op in ops:
            args += op
        for attempt in (1, 2):  # the same number again after a lost reply: applied at most once
            try:
                return Reply(await self._script(MONEY, args))
            except LOST:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _script(self, script: str, args: list[str]) -> str:
        conn = self._conn
        if conn is None or conn.transport is None:
            self._conn = conn = await connect(self.url)
        try:
            raw = await conn.call("EVALSHA", self._shas[script], "0", *args)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            raw = await conn.call("EVAL", script, "0", *args)
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def _tell_soon(self) -> None:
        self._telling = None
        keys, self._untold = sorted(self._untold), set()
        if keys:
            self._told = asyncio.get_running_loop().time()
            asyncio.get_running_loop().create_task(self._tell(keys))

    async def _tell(self, keys: list[str]) -> None:
        """Publish the balances Redis holds now for `keys` (versions: a receiver keeps only the newest)."""
        try:
            await self._script(TELL, [self.names.base, self.instance, *keys])
        except (*LOST, ReplyError) as exc:  # the periodic refresh will carry them
            log.debug("redis: could not publish balances: %s", exc)

    async def _recover(self, batch: list[Held], outcome: StoreUnavailable) -> None:
        """Redis was lost with `batch` in flight: wait for it, then refund whatever of it was applied.
        Charges queued meanwhile are refused after each failed try, not held for the whole outage."""
        refunds: list[list[str]] | None = None  # known once the batch is settled
        delay = 0.05
        self._refuse_queued(outcome)
        while True:
            try:
                if refunds is None:
                    reply = await self.settle_doubt()
                    refunds = self.refunds(batch, reply) if reply is not None else []
                elif self.doubtful is not None and await self.settle_doubt() is not None:
                    refunds = []  # the refunds' own batch had been applied: never send it twice
                if refunds:
                    self.seq += 1
                    self.doubtful = self.seq
                    await self._money(refunds, self.seq)
                    self.doubtful = None
                    log.warning("redis: refunded %d charges whose calls were not forwarded", len(refunds))
                self.link.up = True
                return
            except (*LOST, ReplyError) as exc:
                self.link.up = False
                self._refuse_queued(StoreUnavailable(f"redis unreachable: {exc}"))
                await asyncio.sleep(delay)  # back off while Redis is away; calls meanwhile are refused
                delay = min(delay * 2, MAX_BACKOFF)

    def _refuse_queued(self, outcome: StoreUnavailable) -> None:
        stranded = [h for h in self.queue if h.future is not None]
        if stranded:
            self.queue = [h for h in self.queue if h.future is None]
            self._settle(stranded, outcome)

    async def settle_doubt(self) -> Reply | None:
        """Settle the doubtful batch: its reply if it had been applied, None if it never will be."""
        doubtful = self.doubtful
        if doubtful is None:
            return None
        text = await self._script(FENCE, [self.names.base, self.lane, str(doubtful)])
        self.doubtful = None
        return fenced(text, doubtful, self.lane)

    @staticmethod
    def refunds(batch: list[Held], reply: Reply) -> list[list[str]]:
        ops = []
        for held, line in zip(batch, reply.lines, strict=False):
            if held.future is not None and line.startswith("1 ") and held.credits:
                refund = adjust_op(
                    held.key_hash,
                    held.credits,
                    "refund",
                    NOT_FORWARDED,
                    -held.credits,
                    -held.calls,
                    held.ts,
                    held.team_id,
                )
                ops.append(refund)
        return ops
