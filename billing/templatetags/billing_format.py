"""`{{ quota|usd }}`: quota shown as dollars in the pages."""

from __future__ import annotations

from django import template

from billing.admin import format_usd

register = template.Library()


@register.filter
def usd(quota: int | None) -> str:
    return format_usd(quota)


@register.filter
def usd_precise(quota: int | None) -> str:
    return format_usd(quota, precise=True)
