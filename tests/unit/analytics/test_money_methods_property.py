"""The anomaly and forecast arithmetic on series whose answers are known exactly (a flat series, a straight
line, one spike), and its invariants on random series."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.analytics.reports.money_methods import (
    Line,
    forecast,
    hours_until,
    least_squares,
    mad,
    median,
    projected_total,
    robust_scale,
    robust_z,
    worst_spike,
)


def test_median_and_mad() -> None:
    assert median([]) == 0
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    assert mad([1, 2, 3, 4, 100]) == 1  # deviations 2,1,0,1,97: the outlier does not move it
    assert mad([7] * 10) == 0


def test_flat_history_scale_is_the_count_noise() -> None:
    assert robust_scale([16] * 30) == 4  # MAD 0: √16
    assert robust_scale([0] * 30) == 1  # never below 1
    assert robust_z(16, [16] * 30) == 0
    assert robust_z(40, [16] * 30) == 6  # (40 - 16) / 4


def test_spread_history_uses_mad() -> None:
    history = [10, 20] * 15  # median 15, MAD 5 → scale 7.413 (> √15)
    assert robust_scale(history) == pytest.approx(1.4826 * 5)
    assert robust_z(15 + 1.4826 * 5 * 4, history) == pytest.approx(4)


def test_short_history_has_no_verdict() -> None:
    assert robust_z(100, [1] * 23) is None
    assert robust_z(100, [1] * 23, min_history=5) is not None
    assert worst_spike([1.0] * 23, [(0, 100.0)]) is None


def test_one_spike_is_found_and_named() -> None:
    history = [4.0] * 48  # median 4, scale 2
    recent = [(h, 4.0) for h in range(100, 124)]
    recent[10] = (110, 40.0)  # z = 18
    recent[20] = (120, 12.0)  # z = 4
    spike = worst_spike(history, recent, threshold=3.5)
    assert spike is not None
    assert (spike.hour, spike.value, spike.z, spike.centre, spike.scale, spike.flagged_hours) == (110, 40, 18, 4, 2, 2)
    assert worst_spike(history, recent, threshold=20) is None
    assert worst_spike(history, recent, threshold=3.5, min_value=50) is None  # too few calls to count


def test_flat_recent_is_no_spike() -> None:
    assert worst_spike([10.0] * 100, [(h, 10.0) for h in range(24)]) is None


def test_least_squares_on_known_lines() -> None:
    assert least_squares([]) == Line(0, 0)
    assert least_squares([7]) == Line(7, 0)
    assert least_squares([5, 5, 5, 5]) == Line(5, 0)
    line = least_squares([3 + 2 * x for x in range(10)])
    assert line.intercept == pytest.approx(3) and line.slope == pytest.approx(2)


def test_projection_of_a_flat_series() -> None:
    assert forecast([10.0] * 24, None) == {"nextHour": 10, "nextDay": 240, "nextWeek": 1680, "nextMonth": 7200}


def test_projection_of_a_line_continues_it() -> None:
    series = [float(x) for x in range(24)]  # 0, 1, … 23: next hours 24, 25, …
    out = forecast(series, None)
    assert out["nextHour"] == 24
    assert out["nextDay"] == sum(range(24, 48))


def test_projection_never_goes_below_zero() -> None:
    series = [float(20 - x) for x in range(20)]  # 20 … 1, next 0, -1, … → 0
    assert forecast(series, None)["nextDay"] == 0
    assert projected_total(Line(2, -1), 0, 5) == 2 + 1 + 0 + 0 + 0


def test_projection_is_capped_by_what_remains() -> None:
    assert forecast([10.0] * 24, 100) == {"nextHour": 10, "nextDay": 100, "nextWeek": 100, "nextMonth": 100}
    assert forecast([10.0] * 24, 0)["nextHour"] == 0


def test_hours_until() -> None:
    assert hours_until(100, 0) is None
    assert hours_until(100, 8) == 12.5
    assert hours_until(-5, 8) == 0


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=60))
def test_least_squares_goes_through_the_means(series: list[int]) -> None:
    line = least_squares([float(v) for v in series])
    mean_x, mean_y = (len(series) - 1) / 2, sum(series) / len(series)
    assert line.at(mean_x) == pytest.approx(mean_y, abs=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=24, max_size=100), st.integers(0, 5000))
def test_robust_z_is_monotone_and_scale_positive(history: list[int], value: int) -> None:
    h = [float(v) for v in history]
    z = robust_z(value, h)
    assert z is not None and math.isfinite(z)
    assert robust_scale(h) >= 1
    assert robust_z(value + 1, h) > z  # type: ignore[operator]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 1000), max_size=48), st.integers(0, 100_000))
def test_forecast_horizons_grow_and_respect_the_cap(series: list[int], remaining: int) -> None:
    out = forecast([float(v) for v in series], remaining)
    values = [out["nextHour"], out["nextDay"], out["nextWeek"], out["nextMonth"]]
    assert values == sorted(values)
    assert all(0 <= v <= remaining for v in values)
