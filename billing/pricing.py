"""Cost of a request from its usage: pure integer arithmetic, exact to the quota unit.

Prices are USD per 1M tokens with up to 6 decimals, kept as integers of micro-USD per 1M
tokens. One quota unit is 1/500,000 USD, so a token at P micro-USD/1M costs P / 2,000,000
quota; group ratios have 4 decimals (R / 10,000). The total is rounded up once, at the end:
cost = ceil(sum(tokens_i * P_i) * R / 2e10).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

MICRO = Decimal(1_000_000)
RATIO_SCALE = 10_000
_DENOMINATOR = 2_000_000 * RATIO_SCALE


def micro_usd(value: Decimal | str | float | None) -> int | None:
    if value is None:
        return None
    return int((Decimal(str(value)) * MICRO).to_integral_value())


def ratio_units(value: Decimal | str | float) -> int:
    return int((Decimal(str(value)) * RATIO_SCALE).to_integral_value())


@dataclass(frozen=True, slots=True)
class Price:
    """Micro-USD per 1M tokens for each token kind."""

    input: int
    output: int
    cached_input: int
    cache_write: int
    cache_write_1h: int

    @classmethod
    def from_usd(
        cls,
        input: Decimal | str,
        output: Decimal | str,
        cached_input: Decimal | str | None = None,
        cache_write: Decimal | str | None = None,
        cache_write_1h: Decimal | str | None = None,
    ) -> Price:
        base = micro_usd(input) or 0

        def or_base(value: Decimal | str | None) -> int:
            converted = micro_usd(value)
            return base if converted is None else converted

        return cls(base, micro_usd(output) or 0, or_base(cached_input), or_base(cache_write), or_base(cache_write_1h))


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one request. `prompt_tokens` includes cached and cache-write tokens
    (OpenAI's convention); the other prompt fields say how many of them were which kind."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def cost_quota(usage: Usage, price: Price, group_ratio: int) -> int:
    """Quota for `usage` at `price` times the group ratio (in RATIO_SCALE units), rounded up."""
    cached = min(max(usage.cached_tokens, 0), max(usage.prompt_tokens, 0))
    write5 = min(max(usage.cache_write_tokens, 0), max(usage.prompt_tokens - cached, 0))
    write1h = min(max(usage.cache_write_1h_tokens, 0), max(usage.prompt_tokens - cached - write5, 0))
    uncached = max(usage.prompt_tokens - cached - write5 - write1h, 0)
    micro_total = (
        uncached * price.input
        + cached * price.cached_input
        + write5 * price.cache_write
        + write1h * price.cache_write_1h
        + max(usage.completion_tokens, 0) * price.output
    )
    return ceil_div(micro_total * group_ratio, _DENOMINATOR)


def estimate_hold(*, prompt_tokens: int, max_output_tokens: int, price: Price, group_ratio: int) -> int:
    """The quota to hold before the call: the worst case we can foresee."""
    return cost_quota(Usage(prompt_tokens=prompt_tokens, completion_tokens=max_output_tokens), price, group_ratio)
