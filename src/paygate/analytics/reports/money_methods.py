"""The arithmetic behind the money reports' anomalies and forecasts, as small pure functions over plain
series (docs/analytics-money.md, "Methods"). No I/O and no report shapes here: each is tested on series whose
answer is known (tests/unit/analytics/test_money_methods.py).

- Anomalies: a robust z-score. An hour's value is compared with the median of the subject's own history and
  scaled by the median absolute deviation (MAD, times 1.4826 so that it estimates a standard deviation for
  normal data). The median and MAD ignore the spikes they are looking for, which a mean and a standard
  deviation would not. A count has noise of about its square root even when its history is perfectly flat
  (MAD 0), so the scale is never below √median (and never below 1).
- Forecasts: a least-squares line through the hourly series (x = 0, 1, … n-1), projected forward hour by
  hour, each projected hour at least 0 (spend cannot go negative), summed over the horizon and capped by
  the credits that remain (nobody can spend credits they do not hold).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MAD_TO_SIGMA = 1.4826  # MAD x this estimates the standard deviation of normally distributed data
Z_THRESHOLD = 3.5  # the usual cut-off for the modified z-score (Iglewicz and Hoaglin)
MIN_HISTORY_HOURS = 24  # fewer hours of history: no verdict
HORIZONS_HOURS: dict[str, int] = {"nextHour": 1, "nextDay": 24, "nextWeek": 168, "nextMonth": 720}


def median(values: Sequence[float]) -> float:
    """The middle value (the mean of the two middle values for an even count); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation from the median."""
    centre = median(values)
    return median([abs(v - centre) for v in values])


def robust_scale(history: Sequence[float]) -> float:
    """The spread a value is measured in: 1.4826·MAD, never below √median nor below 1."""
    centre = median(history)
    return max(MAD_TO_SIGMA * mad(history), math.sqrt(max(centre, 1.0)))


def robust_z(value: float, history: Sequence[float], min_history: int = MIN_HISTORY_HOURS) -> float | None:
    """How many robust standard deviations `value` lies above (positive) or below the median of `history`;
    None when the history is shorter than `min_history`."""
    if len(history) < min_history:
        return None
    return (value - median(history)) / robust_scale(history)


@dataclass(frozen=True, slots=True)
class Line:
    """value(x) = intercept + slope·x."""

    intercept: float
    slope: float

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x


def least_squares(series: Sequence[float]) -> Line:
    """The line minimising the squared error through (0, s0), (1, s1), …; flat through the only value for
    one point, and zero for none."""
    n = len(series)
    if n == 0:
        return Line(0.0, 0.0)
    mean_y = sum(series) / n
    if n == 1:
        return Line(mean_y, 0.0)
    mean_x = (n - 1) / 2
    sxx = sum((x - mean_x) ** 2 for x in range(n))
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(series))
    slope = sxy / sxx
    return Line(mean_y - slope * mean_x, slope)


def projected_total(line: Line, start: int, hours: int) -> float:
    """The line's values at x = start … start+hours-1, each at least 0, summed."""
    return sum(max(line.at(x), 0.0) for x in range(start, start + hours))


def forecast(series: Sequence[float], remaining: float | None) -> dict[str, float]:
    """Each horizon's projected total after the last hour of `series`, capped by `remaining` (None: no
    cap), rounded to 2 decimals."""
    line = least_squares(series)
    out: dict[str, float] = {}
    for name, hours in HORIZONS_HOURS.items():
        total = projected_total(line, len(series), hours)
        out[name] = round(total if remaining is None else min(total, max(remaining, 0.0)), 2)
    return out


def hours_until(remaining: float, per_hour: float) -> float | None:
    """Hours until `remaining` is spent at `per_hour` (None when nothing is being spent)."""
    if per_hour <= 0:
        return None
    return round(max(remaining, 0.0) / per_hour, 2)


@dataclass(frozen=True, slots=True)
class Spike:
    """The worst hour of a recent stretch against the history before it."""

    hour: int
    value: float
    z: float
    centre: float  # the history's median
    scale: float  # the spread z is measured in (robust_scale)
    flagged_hours: int  # recent hours at or above the threshold


def worst_spike(
    history: Sequence[float],
    recent: Sequence[tuple[int, float]],
    threshold: float = Z_THRESHOLD,
    min_value: float = 0.0,
    min_history: int = MIN_HISTORY_HOURS,
) -> Spike | None:
    """The recent (hour, value) with the highest robust z against `history`, if it reaches `threshold` and
    `min_value` (a handful of calls is no spike, however quiet the key); None otherwise or without enough
    history."""
    if len(history) < min_history:
        return None
    centre, scale = median(history), robust_scale(history)
    scored = [(hour, value, (value - centre) / scale) for hour, value in recent if value >= min_value]
    flagged = [s for s in scored if s[2] >= threshold]
    if not flagged:
        return None
    hour, value, z = max(flagged, key=lambda s: (s[2], s[0]))
    return Spike(hour, value, round(z, 2), centre, round(scale, 4), len(flagged))
