"""The three-state breaker (traffic/breaker.py) on a fake clock: every transition, and the cases that
decide whether a flaky backend flaps: late outcomes while open, a probe that records nothing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from paygate.traffic.breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def opened(threshold: int = 3, cooldown: float = 10.0) -> tuple[Breaker, Clock]:
    clock = Clock()
    breaker = Breaker(threshold, cooldown, clock)
    for _ in range(threshold):
        assert breaker.allow()
        breaker.record(False)
    assert breaker.state == "open"
    return breaker, clock


def test_it_opens_after_threshold_consecutive_failures_and_a_success_resets_the_count() -> None:
    breaker = Breaker(3, 10.0, Clock())
    breaker.record(False)
    breaker.record(False)
    breaker.record(True)  # not consecutive any more
    breaker.record(False)
    breaker.record(False)
    assert breaker.state == "closed" and breaker.failures == 2
    breaker.record(False)
    assert breaker.state == "open" and breaker.opened == 1


def test_open_refuses_and_counts_until_the_cooldown_then_lets_one_probe_through() -> None:
    breaker, clock = opened(cooldown=10.0)
    assert not breaker.allow() and not breaker.allow()
    assert breaker.rejections == 2
    clock.now += 4.0
    assert breaker.retry_after() == 6.0
    clock.now += 6.0
    assert breaker.state == "half_open" and breaker.retry_after() == 0.0
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    assert breaker.rejections == 3


def test_a_successful_probe_closes_it_and_a_failed_one_opens_it_for_a_new_cooldown() -> None:
    breaker, clock = opened(cooldown=10.0)
    clock.now += 10.0
    assert breaker.allow()
    breaker.record(False)
    assert breaker.state == "open" and breaker.opened == 2
    clock.now += 9.9
    assert breaker.state == "open"  # the cooldown started again at the failed probe
    clock.now += 0.1
    assert breaker.allow()
    breaker.record(True)
    assert breaker.state == "closed" and breaker.failures == 0
    assert breaker.allow() and breaker.allow()


def test_late_outcomes_while_open_change_nothing() -> None:
    """Calls let through before it opened answer later: a late failure must not restart the cooldown
    (nor count as another opening), a late success must not close it (only a probe may)."""
    breaker, clock = opened(threshold=2, cooldown=10.0)
    clock.now += 5.0
    breaker.record(False)
    assert breaker.opened == 1 and breaker.retry_after() == 5.0
    breaker.record(True)
    assert breaker.state == "open"
    clock.now += 5.0
    assert breaker.state == "half_open"


def test_a_probe_that_records_nothing_can_be_released() -> None:
    breaker, clock = opened()
    clock.now += 10.0
    assert breaker.allow()
    assert not breaker.allow()
    breaker.release_probe()  # e.g. the gate refused the probe: nothing reached the backend
    assert breaker.allow()
    breaker.release_probe()
    breaker.record(True)
    breaker.release_probe()  # closed: no effect
    assert breaker.state == "closed"


def test_threshold_zero_never_opens_and_reset_closes() -> None:
    breaker = Breaker(0, 10.0, Clock())
    for _ in range(100):
        breaker.record(False)
    assert breaker.state == "closed" and breaker.allow()
    opened_one, _ = opened()
    opened_one.reset()
    assert opened_one.state == "closed" and opened_one.failures == 0 and opened_one.allow()


def test_snapshot() -> None:
    breaker, clock = opened(threshold=1, cooldown=30.0)
    clock.now += 10.0
    assert breaker.snapshot() == {
        "state": "open",
        "failures": 1,
        "threshold": 1,
        "cooldownSeconds": 30.0,
        "rejections": 0,
        "timesOpened": 1,
        "retryAfterSeconds": 20.0,
    }


@given(st.lists(st.tuples(st.sampled_from(["call", "ok", "fail", "wait"]), st.floats(0, 20)), max_size=60))
def test_invariants_over_any_sequence(steps: list[tuple[str, float]]) -> None:
    """Whatever happens: while open nothing is let through; at most one probe is out while half-open;
    it opens only with `threshold` consecutive failures behind it or a failed probe."""
    clock = Clock()
    breaker = Breaker(3, 5.0, clock)
    out = 0  # calls let through whose outcome is not recorded yet
    probes = 0
    for step, amount in steps:
        if step == "wait":
            clock.now += amount
        elif step == "call":
            state = breaker.state
            allowed = breaker.allow()
            if state == "open":
                assert not allowed
            if state == "half_open" and allowed:
                probes += 1
                assert probes == 1
            out += allowed
        elif out:
            out -= 1
            before = breaker.state
            breaker.record(step == "ok")
            if breaker.state != "half_open":
                probes = 0
            if before == "closed" and breaker.state == "open":
                assert breaker.failures >= 3


def test_record_names_each_transition_it_makes() -> None:
    clock = Clock()
    breaker = Breaker(2, 5.0, clock)
    assert breaker.record(False) is None
    assert breaker.record(False) == ("closed", "open")
    assert breaker.record(False) is None  # late, while open
    clock.now += 5.0
    assert breaker.allow() and breaker.probe_out
    assert breaker.record(False) == ("half_open", "open")
    clock.now += 5.0
    assert breaker.allow()
    assert breaker.record(True) == ("half_open", "closed")
    assert breaker.record(True) is None and not breaker.probe_out
