"""Runtime options: the original's option keys, their defaults and typed parsing.

Options live in the `options` table (editable in the admin); anything absent takes the
default below. The relay reads them from its in-memory snapshot (relay.cache).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"true", "1", "yes", "on"}:
        return True
    if lowered in {"false", "0", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _int(value: str) -> int:
    return int(value.strip())


def _decimal(value: str) -> Decimal:
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise ValueError(f"expected a number, got {value!r}") from None
    if number < 0:
        raise ValueError("must not be negative")
    return number


@dataclass(frozen=True)
class OptionSpec:
    default: str
    parse: Callable[[str], object]
    help: str
    secret: bool = False


OPTION_SPECS: dict[str, OptionSpec] = {
    "RetryTimes": OptionSpec("2", _int, "How many other channels to try after a 429, 5xx, timeout or connection error."),
    "PreConsumedQuota": OptionSpec("500", _int, "Quota added to every request's hold, on top of its estimate."),
    "DefaultInputPrice": OptionSpec("2.5", _decimal, "USD per 1M input tokens for models with no price set."),
    "DefaultOutputPrice": OptionSpec("10", _decimal, "USD per 1M output tokens for models with no price set."),
    "LogConsumeEnabled": OptionSpec("true", _bool, "Write a consume log row for every request."),
    "AutomaticDisableChannelEnabled": OptionSpec("false", _bool, "Disable channels whose upstream rejects the key or billing."),
    "AutomaticEnableChannelEnabled": OptionSpec("false", _bool, "Re-enable auto-disabled channels that pass a test."),
    "ChannelDisableThreshold": OptionSpec("5", _decimal, "Seconds; a slower channel test counts as failed."),
    "QuotaForNewUser": OptionSpec("0", _int, "Quota granted to newly registered users."),
    "QuotaPerUnit": OptionSpec("500000", _int, "Quota per USD (fixed at 500000, as in the original)."),
}


def parse_option(key: str, raw: str) -> object:
    spec = OPTION_SPECS.get(key)
    if spec is None:
        return raw
    return spec.parse(raw)


def defaults() -> dict[str, object]:
    return {key: spec.parse(spec.default) for key, spec in OPTION_SPECS.items()}
