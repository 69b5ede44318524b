from __future__ import annotations

from decimal import Decimal

from billing.pricing import Price, Usage, cost_quota, estimate_hold, ratio_units


def test_cost_is_rounded_up_once_from_exact_prices():
    price = Price.from_usd("2.5", "10")
    # 5 * 2.5 + 6 * 10 = 72.5 micro-USD = 36.25 quota -> 37
    assert cost_quota(Usage(prompt_tokens=5, completion_tokens=6), price, ratio_units("1")) == 37


def test_cached_and_cache_write_tokens_use_their_prices():
    price = Price.from_usd("3", "15", cached_input="0.3", cache_write="3.75", cache_write_1h="6")
    usage = Usage(prompt_tokens=10_000, completion_tokens=1_000, cached_tokens=6_000, cache_write_tokens=2_000, cache_write_1h_tokens=1_000)
    micro = 1_000 * 3 + 6_000 * Decimal("0.3") + 2_000 * Decimal("3.75") + 1_000 * 6 + 1_000 * 15
    assert cost_quota(usage, price, ratio_units("1")) == int(micro / 2)


def test_unset_cached_price_means_the_input_price_and_ratio_applies():
    price = Price.from_usd("1", "1")
    assert price.cached_input == price.input == price.cache_write == 1_000_000
    assert cost_quota(Usage(prompt_tokens=1_000_000), price, ratio_units("0.5")) == 250_000


def test_cached_tokens_never_exceed_the_prompt_and_free_models_cost_nothing():
    price = Price.from_usd("1", "2", cached_input="0")
    assert cost_quota(Usage(prompt_tokens=10, cached_tokens=50), price, 10_000) == 0
    assert cost_quota(Usage(prompt_tokens=10, completion_tokens=10), Price.from_usd("0", "0"), 10_000) == 0


def test_estimate_hold_covers_the_worst_case():
    price = Price.from_usd("1", "4")
    assert estimate_hold(prompt_tokens=1000, max_output_tokens=500, price=price, group_ratio=10_000) == 1500
