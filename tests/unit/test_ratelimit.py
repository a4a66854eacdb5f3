from __future__ import annotations

from paygate.core.ratelimit import SlidingWindow


def test_window_admits_up_to_the_limit_then_refuses() -> None:
    w = SlidingWindow(60)
    decisions = [w.hit("k", 3, 100.0 + i) for i in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]


def test_calls_leave_the_window_after_sixty_seconds() -> None:
    w = SlidingWindow(60)
    w.hit("k", 1, 100.0)
    assert not w.hit("k", 1, 159.9).allowed
    assert w.hit("k", 1, 160.0).allowed


def test_reset_counts_down_to_the_oldest_call_leaving() -> None:
    w = SlidingWindow(60)
    w.hit("k", 2, 100.0)
    assert w.peek("k", 2, 130.0).reset_seconds == 31


def test_zero_limit_means_unlimited_and_records_nothing() -> None:
    w = SlidingWindow(60)
    assert all(w.hit("k", 0, 1.0).allowed for _ in range(1000))
    assert w.peek("k", 5, 1.0).remaining == 5


def test_subjects_are_independent_and_undo_returns_a_slot() -> None:
    w = SlidingWindow(60)
    assert w.hit("a", 1, 1.0).allowed
    assert w.hit("b", 1, 1.0).allowed
    assert not w.hit("a", 1, 2.0).allowed
    w.undo("a")
    assert w.hit("a", 1, 3.0).allowed


def test_idle_windows_are_forgotten() -> None:
    w = SlidingWindow(60)
    w.hit("a", 5, 1.0)
    w.forget_idle(100.0)
    assert w.peek("a", 5, 100.0).remaining == 5
