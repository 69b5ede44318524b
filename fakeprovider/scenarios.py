"""Parsing of the ``/s/<scenario-list>`` URL prefix.

A scenario list is a comma-separated set of items such as
``429``, ``timeout=2.5``, ``words=40,slow=20,cut``.  Putting the behaviour in
the URL (rather than in headers or server state) lets every test or
benchmark pick its upstream behaviour just by configuring a base URL, with no
shared mutable state between concurrently running tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["DEFAULT", "Scenario", "ScenarioError", "parse_scenarios"]

#: Error statuses that can be forced; the body for each lives in server.py.
ERROR_ITEMS = frozenset({"401", "429", "500", "503"})
#: Bare flags.
FLAG_ITEMS = frozenset({"cut", "garbage", "notools", "no_json_schema"})
#: ``name=value`` items and the type of their value.
VALUE_ITEMS: dict[str, type] = {
    "timeout": float,
    "ttfb": float,
    "slow": float,
    "words": int,
    "cached": int,
}


class ScenarioError(ValueError):
    """An unknown or malformed scenario item (answered with HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """The parsed scenario list.  Delays are stored in seconds."""

    error: int | None = None  # forced error status (first one wins)
    timeout: float = 0.0  # ``timeout=S``: sleep before sending anything
    ttfb: float = 0.0  # ``ttfb=MS``: delay before response headers
    slow: float = 0.0  # ``slow=MS``: delay between stream chunks
    words: int | None = None  # ``words=N``: exact reply length in words
    cached: int = 0  # ``cached=N``: reported cached prompt tokens
    cut: bool = False
    garbage: bool = False
    notools: bool = False  # reply in text even when the request lists tools (agent CLIs always do)
    no_json_schema: bool = False  # refuse response_format json_schema, as DeepSeek does

    @property
    def pre_delay(self) -> float:
        """Total sleep before the response headers go out."""
        return self.timeout + self.ttfb


DEFAULT = Scenario()


@lru_cache(maxsize=1024)
def parse_scenarios(spec: str) -> Scenario:
    """Parse ``"429,timeout=1.5"`` into a :class:`Scenario`.

    Cached: benchmarks hammer the same few prefixes, and Scenario is
    immutable.  Raises :class:`ScenarioError` naming the offending item.
    """
    values: dict[str, object] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep:
            if name in ERROR_ITEMS:
                values.setdefault("error", int(name))
            elif name in FLAG_ITEMS:
                values[name] = True
            else:
                raise ScenarioError(f"Unknown scenario item: {item!r}")
            continue
        kind = VALUE_ITEMS.get(name)
        if kind is None:
            raise ScenarioError(f"Unknown scenario item: {item!r}")
        try:
            number = kind(value)
        except ValueError:
            raise ScenarioError(
                f"Invalid value for scenario item {name!r}: {value!r}"
            ) from None
        if number < 0 or not math.isfinite(number):  # no negative/NaN/inf delays
            raise ScenarioError(f"Scenario item {name!r} must be a finite number >= 0, got {value!r}")
        if name in ("ttfb", "slow"):
            number = number / 1000.0  # given in milliseconds
        values[name] = number
    return Scenario(**values)  # type: ignore[arg-type]
