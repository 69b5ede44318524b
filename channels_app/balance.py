"""Channel balance refresh, for the channel types whose provider exposes a balance endpoint.

As the original (controller/channel-billing.go): OpenAI-style `/v1/dashboard/billing/...` for
OpenAI and Custom, `credit_grants` for API2D / API2GPT / AIGC2D, and the providers' own
endpoints for OpenRouter, DeepSeek, SiliconFlow and AIProxy. Every other type is skipped
(`BalanceUnsupported`), its balance left alone. Values are in the provider's currency (USD,
except DeepSeek and SiliconFlow: CNY), as the original shows them.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from .models import Channel
from .types import type_info

TIMEOUT_SECONDS = 20

Getter = Callable[[str, dict[str, str]], Any]


class BalanceUnsupported(Exception):
    """This channel type has no balance endpoint."""


class BalanceError(Exception):
    """The provider did not answer with a balance."""


def _get_json(url: str, headers: dict[str, str]) -> Any:
    handlers: list[urllib.request.BaseHandler] = []
    if settings.RELAY_PROXY:
        handlers.append(urllib.request.ProxyHandler({"http": settings.RELAY_PROXY, "https": settings.RELAY_PROXY}))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (operator's URL)
            return json.loads(response.read(1024 * 1024))
    except urllib.error.HTTPError as exc:
        raise BalanceError(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise BalanceError(f"{url}: {exc}") from None


def _bearer(channel: Channel) -> dict[str, str]:
    return {"Authorization": f"Bearer {channel.key.strip()}"}


def _openai_dashboard(get: Getter, base: str, channel: Channel) -> float:
    headers = _bearer(channel)
    subscription = get(f"{base}/v1/dashboard/billing/subscription", headers)
    today = datetime.now(UTC).date()
    start = today - timedelta(days=99)
    usage = get(
        f"{base}/v1/dashboard/billing/usage?start_date={start:%Y-%m-%d}&end_date={today + timedelta(days=1):%Y-%m-%d}",
        headers,
    )
    return float(subscription["hard_limit_usd"]) - float(usage["total_usage"]) / 100  # usage is in cents


def _credit_grants(field: str) -> Callable[[Getter, str, Channel], float]:
    def fetch(get: Getter, base: str, channel: Channel) -> float:
        return float(get(f"{base}/dashboard/billing/credit_grants", _bearer(channel))[field])

    return fetch


def _openrouter(get: Getter, base: str, channel: Channel) -> float:
    data = get(f"{base}/v1/credits", _bearer(channel))["data"]  # base already ends in /api
    return float(data["total_credits"]) - float(data["total_usage"])


def _deepseek(get: Getter, base: str, channel: Channel) -> float:
    infos = get(f"{base}/user/balance", _bearer(channel))["balance_infos"]
    return sum(float(info["total_balance"]) for info in infos if info.get("currency") in (None, "CNY")) or (
        float(infos[0]["total_balance"]) if infos else 0.0
    )


def _siliconflow(get: Getter, base: str, channel: Channel) -> float:
    return float(get(f"{base}/v1/user/info", _bearer(channel))["data"]["totalBalance"])


def _aiproxy(get: Getter, base: str, channel: Channel) -> float:
    data = get("https://aiproxy.io/api/report/getUserOverview", {"Api-Key": channel.key.strip()})
    return float(data["data"]["totalPoints"])


FETCHERS: dict[int, Callable[[Getter, str, Channel], float]] = {
    1: _openai_dashboard,  # OpenAI
    8: _openai_dashboard,  # Custom
    2: _credit_grants("total_available"),  # API2D
    12: _credit_grants("total_remaining"),  # API2GPT
    13: _credit_grants("total_available"),  # AIGC2D
    20: _openrouter,
    36: _deepseek,
    44: _siliconflow,
    10: _aiproxy,
}


def balance_supported(channel: Channel) -> bool:
    return channel.type in FETCHERS


def channel_refresh_balance(*, channel: Channel, get: Getter = _get_json) -> float:
    """Ask the provider for the channel's balance and store it (no cache reload: not routed on)."""
    fetch = FETCHERS.get(channel.type)
    if fetch is None:
        raise BalanceUnsupported(f"{type_info(channel.type).name} channels have no balance endpoint")
    base = (channel.base_url or type_info(channel.type).default_base_url).rstrip("/")
    try:
        balance = fetch(get, base, channel)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise BalanceError(f"unexpected balance answer: {exc.__class__.__name__}: {exc}") from None
    now = timezone.now()
    Channel.objects.filter(pk=channel.pk).update(balance=balance, balance_updated_at=now)
    channel.balance, channel.balance_updated_at = balance, now
    return balance
