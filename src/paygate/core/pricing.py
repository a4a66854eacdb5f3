"""Credit pricing: per-call base price plus optional size-based surcharges.

All arithmetic is on integers. A size-based charge rounds up and counts
anything under one kilobyte as one kilobyte (the reference: a 3 KB input at
5 credits/KB on a base of 2 costs 2 + ceil(3 * 5) = 17).
"""

from __future__ import annotations

from dataclasses import dataclass

KB = 1024


@dataclass(frozen=True, slots=True)
class ToolPrice:
    """The resolved price of one tool (defaults already applied)."""

    credits_per_call: int
    credits_per_kb_input: int = 0
    credits_per_kb_output: int = 0
    rate_limit_per_min: int = 0  # 0 means the tool has no limit of its own

    @property
    def model(self) -> str:
        return "dynamic" if self.credits_per_kb_input or self.credits_per_kb_output else "flat"

    def public(self) -> dict[str, object]:
        """The `_pricing` object the reference puts on each tool."""
        out: dict[str, object] = {
            "creditsPerCall": self.credits_per_call,
            "pricingModel": self.model,
            "rateLimitPerMin": self.rate_limit_per_min or None,
        }
        if self.credits_per_kb_input:
            out["creditsPerKbInput"] = self.credits_per_kb_input
        if self.credits_per_kb_output:
            out["creditsPerKbOutput"] = self.credits_per_kb_output
        return out


def size_surcharge(size_bytes: int, credits_per_kb: int) -> int:
    """ceil(max(size, 1 KB) / 1 KB * credits_per_kb), exactly, in integers."""
    if credits_per_kb <= 0:
        return 0
    billable = max(size_bytes, KB)
    return (billable * credits_per_kb + KB - 1) // KB


def call_price(price: ToolPrice, input_bytes: int) -> int:
    """Credits charged up front for one call."""
    return price.credits_per_call + size_surcharge(input_bytes, price.credits_per_kb_input)


def output_surcharge(price: ToolPrice, output_bytes: int) -> int:
    """Credits charged after the response, by its size."""
    return size_surcharge(output_bytes, price.credits_per_kb_output)


class PriceBook:
    """Resolves a tool name to its price from defaults and per-tool overrides."""

    __slots__ = ("_cache", "default_price", "global_rate_limit", "overrides")

    def __init__(
        self,
        default_price: int,
        global_rate_limit: int,
        overrides: dict[str, ToolPrice] | None = None,
    ) -> None:
        self.default_price = default_price
        self.global_rate_limit = global_rate_limit
        self.overrides = dict(overrides or {})
        self._cache: dict[str, ToolPrice] = {}

    def for_tool(self, name: str) -> ToolPrice:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        price = self.overrides.get(name) or ToolPrice(self.default_price)
        if len(self._cache) < 10_000:  # tool names come from clients; bound the cache
            self._cache[name] = price
        return price
