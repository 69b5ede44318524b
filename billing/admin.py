"""Admin for prices, request charges and the consume log, plus the quota helpers the other admins reuse.

Charges and logs are the ledger: operators read them here but never add, edit or delete rows.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import User

from .models import QUOTA_PER_USD, ChannelModelPrice, ConsumeLog, ModelPrice, RequestCharge, UsageDaily, quota_to_usd


def format_usd(quota: int | None, *, precise: bool = False) -> str:
    """Quota as dollars: cents from a dollar up (unless `precise`), else down to one quota unit."""
    if quota is None:
        return "—"
    amount = quota_to_usd(quota)
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount >= 1 and not precise:
        return f"{sign}${amount:,.2f}"
    whole, _, decimals = f"{amount:,.6f}".partition(".")
    return f"{sign}${whole}.{decimals.rstrip('0').ljust(2, '0')}"


def usd_to_quota(usd: Decimal) -> int:
    return int((usd * QUOTA_PER_USD).to_integral_value(rounding=ROUND_HALF_UP))


class UsdField(forms.DecimalField):
    """An amount in USD, precise to one quota unit ($0.000002)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 16)
        kwargs.setdefault("decimal_places", 6)
        super().__init__(**kwargs)


class ReadOnlyAdminMixin:
    """View-only admin: rows are written by the relay, never by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _channel_link(channel_id: int | None, label: str) -> str:
    if channel_id is None:
        return "—"
    url = reverse("admin:channels_app_channel_change", args=[channel_id])
    return format_html('<a href="{}">{}</a>', url, label)


PRICE_FIELDS = ("input_price", "output_price", "cached_input_price", "cache_write_price", "cache_write_1h_price")


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = ("model", *PRICE_FIELDS)
    list_editable = ("input_price", "output_price")
    search_fields = ("model",)
    fields = ("model", *PRICE_FIELDS)


@admin.register(ChannelModelPrice)
class ChannelModelPriceAdmin(admin.ModelAdmin):
    list_display = ("model", "channel", *PRICE_FIELDS)
    list_select_related = ("channel",)
    list_filter = ("channel",)
    search_fields = ("model", "channel__name")
    autocomplete_fields = ("channel",)
    fields = ("channel", "model", *PRICE_FIELDS)


@admin.register(RequestCharge)
class RequestChargeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "request_id",
        "created_at",
        "username",
        "api_key",
        "status",
        "held_quota",
        "held_usd",
        "quota",
        "cost_usd",
        "settled_at",
    )
    # api_key is nullable, so this is a LEFT JOIN; the user is looked up by subquery instead,
    # because the ledger keeps rows of deleted users (no FK constraint) and a JOIN would hide them.
    list_select_related = ("api_key",)
    list_filter = ("status", "created_at")
    search_fields = ("=request_id", "=user__username")
    show_full_result_count = False
    ordering = ("-created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[RequestCharge]:
        usernames = User.objects.filter(pk=OuterRef("user_id")).values("username")[:1]
        return super().get_queryset(request).annotate(username=Subquery(usernames))

    @admin.display(description="user", ordering="user_id")
    def username(self, obj: RequestCharge) -> str:
        return getattr(obj, "username", None) or f"#{obj.user_id}"

    @admin.display(description="held ($)", ordering="held_quota")
    def held_usd(self, obj: RequestCharge) -> str:
        return format_usd(obj.held_quota, precise=True)

    @admin.display(description="cost ($)", ordering="quota")
    def cost_usd(self, obj: RequestCharge) -> str:
        return format_usd(obj.quota, precise=True)


@admin.register(ConsumeLog)
class ConsumeLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "type",
        "username",
        "token_name",
        "model_name",
        "upstream_model",
        "channel_column",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cost_usd",
        "quota",
        "elapsed_ms",
        "is_stream",
        "request_id",
        "status_code",
    )
    list_select_related = ("channel",)
    list_filter = ("type", "is_stream", "created_at", "status_code")
    search_fields = ("=request_id", "=username", "model_name", "upstream_model")
    # Log tables grow to millions of rows: skip the second, unfiltered COUNT(*).
    show_full_result_count = False
    fields = (
        "created_at",
        "type",
        "request_id",
        "trace_link",
        "user",
        "username",
        "api_key",
        "token_name",
        "model_name",
        "upstream_model",
        "channel",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "quota",
        "cost_usd",
        "elapsed_ms",
        "is_stream",
        "status_code",
        "content",
    )
    readonly_fields = fields

    @admin.display(description="channel", ordering="channel_id")
    def channel_column(self, obj: ConsumeLog) -> str:
        label = obj.channel.name if obj.channel else f"#{obj.channel_id}"
        return _channel_link(obj.channel_id, label)

    @admin.display(description="cost ($)", ordering="quota")
    def cost_usd(self, obj: ConsumeLog) -> str:
        return format_usd(obj.quota, precise=True)

    @admin.display(description="trace")
    def trace_link(self, obj: ConsumeLog) -> str:
        if not obj.request_id:
            return "-"
        url = reverse("admin:relay_trace_changelist") + f"?request_id={obj.request_id}"
        return format_html('<a href="{}">timings of this request</a>', url)


@admin.register(UsageDaily)
class UsageDailyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Rolled up by the `rollup-usage` beat task from the consume log."""

    list_display = (
        "day", "user", "api_key", "model_name", "channel_id", "requests", "errors",
        "prompt_tokens", "completion_tokens", "cached_tokens", "cost_column",
    )
    list_filter = ("day",)
    search_fields = ("model_name", "=user__username")
    list_select_related = ("user", "api_key")
    date_hierarchy = "day"
    show_full_result_count = False

    @admin.display(description="cost ($)", ordering="quota")
    def cost_column(self, obj: UsageDaily) -> str:
        return format_usd(obj.quota, precise=True)
