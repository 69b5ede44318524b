"""Helpers for end-to-end tests: an independent expected-cost formula and DB readers."""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import openai

QUOTA_PER_USD = 500_000


def expected_quota(
    *, prompt: int, completion: int, input_usd: str, output_usd: str, cached: int = 0, cached_usd: str | None = None, ratio: str = "1"
) -> int:
    """Cost in quota, written independently of billing.pricing: USD per 1M tokens, rounded up once."""
    cached_price = Fraction(cached_usd) if cached_usd is not None else Fraction(input_usd)
    usd = ((prompt - cached) * Fraction(input_usd) + cached * cached_price + completion * Fraction(output_usd)) / 1_000_000
    return math.ceil(usd * QUOTA_PER_USD * Fraction(ratio))


def client(gateway_url: str, key: str, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway_url + "/v1", api_key=key, max_retries=0, timeout=20, **kwargs)


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def set_price(model: str, input_usd: str, output_usd: str, cached_usd: str | None = None) -> None:
    from billing.models import ModelPrice

    ModelPrice.objects.update_or_create(
        model=model, defaults={"input_price": input_usd, "output_price": output_usd, "cached_input_price": cached_usd}
    )
    wait_for_gateway_cache()


def wait_for_gateway_cache() -> None:
    """Let the live gateway see the latest changes: it reloads at its next cache poll
    (CACHE_CHANGE_POLL_SECONDS = 0.2 in tests). A poll between two setup steps (two channels, a
    channel then its price) leaves it with only the first until the next one; a request sent at
    once would see half the setup (both seen in CI on a loaded machine)."""
    time.sleep(0.6)


def request(
    method: str, url: str, body: bytes | dict[str, Any] | list[Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """A raw HTTP call with urllib (no SDK in the way): (status, lower-cased headers, parsed JSON or text)."""
    import json
    import urllib.error
    import urllib.request

    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})} if data is not None else dict(headers or {})
    req = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=20) as response:
            status, raw, head = response.status, response.read(), response.headers
    except urllib.error.HTTPError as err:
        status, raw, head = err.code, err.read(), err.headers
    text = raw.decode("utf-8", "replace")
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text
    return status, {k.lower(): v for k, v in head.items()}, parsed


def post(url: str, body: bytes | dict[str, Any] | list[Any], headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    return request("POST", url, body, headers)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    return request("GET", url, None, headers)


@contextlib.contextmanager
def cyclic_garbage() -> Iterator[list[Any]]:
    """Yields a list that, once the block has run, holds what the block left in reference cycles:
    what a collection at its end found unreachable (it collects first, so earlier garbage is not
    counted). Objects freed by reference counting never reach the collector."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable goes to gc.garbage
    found: list[Any] = []
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
