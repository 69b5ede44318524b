"""`{% operator_dashboard as dash %}`: the numbers and charts of the admin's index page."""

from __future__ import annotations

from typing import Any

from django import template

from billing.admin import format_usd
from billing.charts import bar_chart
from billing.selectors import channel_health, daily_usage, top_channels, top_models, top_users
from channels_app.models import ChannelStatus

register = template.Library()

CHART_DAYS = 14
TOP_DAYS = 7


@register.simple_tag
def operator_dashboard() -> dict[str, Any]:
    points = daily_usage(days=CHART_DAYS)
    health = list(channel_health()[:50])

    def money(rows: list[Any]) -> list[tuple[Any, str]]:
        return [(row, format_usd(row.quota)) for row in rows]

    return {
        "days": CHART_DAYS,
        "top_days": TOP_DAYS,
        "requests_chart": bar_chart(
            [(p.day.strftime("%m-%d"), p.requests) for p in points], title=f"Requests per day, last {CHART_DAYS} days"
        ),
        "cost_chart": bar_chart(
            [(p.day.strftime("%m-%d"), p.quota) for p in points],
            title=f"Cost per day, last {CHART_DAYS} days",
            fmt=lambda v: format_usd(int(v)),
            css_class="cost",
        ),
        "total_requests": sum(p.requests for p in points),
        "total_cost": format_usd(sum(p.quota for p in points)),
        "top_users": money(top_users(days=TOP_DAYS)),
        "top_models": money(top_models(days=TOP_DAYS)),
        "top_channels": money(top_channels(days=TOP_DAYS)),
        "channels": health,
        "channels_enabled": sum(1 for c in health if c.status == ChannelStatus.ENABLED),
    }
