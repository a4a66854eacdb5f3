"""Scores round halves up, exactly (analytics/shaping.half_up)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from paygate.analytics.shaping import half_up


def test_a_half_made_of_fractions_rounds_up() -> None:
    # 90 x 35 % is 31.5: in floats 90 * 0.35 is 31.499999999999996, which rounded down to 31 (system-health)
    assert 90 * 0.35 < 31.5
    assert half_up(90 * Fraction("0.35")) == 32
    assert half_up(Fraction(25, 6) + Fraction(20, 6)) == 8  # compliance's 7.5
    assert half_up(Fraction(-5, 2)) == -2 and half_up(2.4) == 2 and half_up(0) == 0


@given(st.integers(-10_000, 10_000), st.integers(1, 400))
def test_half_up_is_the_integer_rounding(numerator: int, denominator: int) -> None:
    assert half_up(Fraction(numerator, denominator)) == (2 * numerator + denominator) // (2 * denominator)
