from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from paygate.core.pricing import KB, PriceBook, ToolPrice, call_price, output_surcharge, size_surcharge


def test_reference_example_three_kb_at_five_per_kb_on_base_two_costs_seventeen() -> None:
    assert call_price(ToolPrice(2, credits_per_kb_input=5), 3 * KB) == 17


def test_inputs_under_one_kb_count_as_one_kb() -> None:
    price = ToolPrice(2, credits_per_kb_input=5)
    assert call_price(price, 0) == 7
    assert call_price(price, 10) == 7
    assert call_price(price, KB) == 7


def test_partial_kilobytes_round_up() -> None:
    assert size_surcharge(KB + 1, 5) == 6  # ceil(1.0009765 * 5)
    assert size_surcharge(KB + KB // 2, 3) == 5  # ceil(1.5 * 3)


def test_flat_tools_ignore_size() -> None:
    assert call_price(ToolPrice(4), 10 * KB) == 4
    assert output_surcharge(ToolPrice(4), 10 * KB) == 0


def test_pricing_model_and_public_shape() -> None:
    assert ToolPrice(1).public() == {"creditsPerCall": 1, "pricingModel": "flat", "rateLimitPerMin": None}
    dyn = ToolPrice(2, credits_per_kb_input=5, rate_limit_per_min=10).public()
    assert dyn["pricingModel"] == "dynamic" and dyn["rateLimitPerMin"] == 10 and dyn["creditsPerKbInput"] == 5


def test_pricebook_applies_default_and_overrides() -> None:
    book = PriceBook(3, 60, {"premium": ToolPrice(20)})
    assert book.for_tool("premium").credits_per_call == 20
    assert book.for_tool("anything").credits_per_call == 3


@given(st.integers(0, 10**7), st.integers(0, 10**4))
def test_size_surcharge_equals_exact_ceiling(size: int, per_kb: int) -> None:
    import math
    from fractions import Fraction

    expected = math.ceil(Fraction(max(size, KB), KB) * per_kb) if per_kb else 0
    assert size_surcharge(size, per_kb) == expected
