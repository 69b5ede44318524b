"""Admin for channels (with per-model prices and the test / enable / disable actions) and abilities."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Group
from billing.admin import ReadOnlyAdminMixin, format_usd
from billing.models import ChannelModelPrice

from .balance import BalanceError, BalanceUnsupported, channel_refresh_balance
from .forms import ChannelForm
from .models import Ability, Channel, ChannelStatus
from .services import channel_duplicate, channel_set_status
from .testing import channel_test
from .types import type_info

# Written by the relay and by channel tests, never by this form: saving must not overwrite them.
_COUNTER_FIELDS = {"used_quota", "balance", "balance_updated_at", "test_time", "response_time", "last_test_error"}


class ChannelModelPriceInline(admin.TabularInline):
    model = ChannelModelPrice
    extra = 0
    fields = ("model", "input_price", "output_price", "cached_input_price", "cache_write_price", "cache_write_1h_price")
    verbose_name = "price override (USD per 1M tokens)"
    verbose_name_plural = "price overrides (USD per 1M tokens; they win over the global model prices)"


class ChannelTypeFilter(admin.SimpleListFilter):
    """Only the types in use: the full list of 58 would bury them."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        used = Channel.objects.order_by("type").values_list("type", flat=True).distinct()
        return [(str(tid), type_info(tid).name) for tid in used]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Channel]) -> QuerySet[Channel]:
        value = self.value()
        return queryset.filter(type=value) if value and value.isdigit() else queryset


class ChannelGroupFilter(admin.SimpleListFilter):
    title = "group"
    parameter_name = "group"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(name, name) for name in Group.objects.values_list("name", flat=True)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Channel]) -> QuerySet[Channel]:
        name = self.value()
        if not name:
            return queryset
        # `groups` is a comma list: match whole items only.
        return queryset.filter(
            Q(groups=name)
            | Q(groups__startswith=f"{name},")
            | Q(groups__endswith=f",{name}")
            | Q(groups__contains=f",{name},")
        )


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    inlines = (ChannelModelPriceInline,)
    list_display = (
        "id",
        "name",
        "type_name",
        "status",
        "priority",
        "weight",
        "groups",
        "response_time_ms",
        "test_time",
        "used_quota_usd",
    )
    list_display_links = ("id", "name")
    list_filter = ("status", ChannelTypeFilter, ChannelGroupFilter)
    search_fields = ("name", "base_url", "model_names", "groups")
    readonly_fields = (
        "last_test",
        "last_test_error",
        "used_quota",
        "used_quota_usd",
        "balance",
        "balance_updated_at",
        "created_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "type", "key", "base_url", "status")}),
        ("Routing", {"fields": ("model_names", "model_mapping", "groups", ("priority", "weight"))}),
        ("Advanced", {"fields": ("config", "testing_model")}),
        (
            "Health and usage",
            {
                "fields": (
                    "last_test",
                    "last_test_error",
                    ("used_quota", "used_quota_usd"),
                    "balance",
                    "balance_updated_at",
                    "created_at",
                )
            },
        ),
    )
    actions = ("test_channels", "enable_channels", "disable_channels", "duplicate_channels", "refresh_balances")

    def save_model(self, request: HttpRequest, obj: Channel, form: ModelForm, change: bool) -> None:
        if not change:
            obj.save()
            return
        obj.save(
            update_fields=[
                f.name for f in Channel._meta.concrete_fields if f.name in form.fields and f.name not in _COUNTER_FIELDS
            ]
        )

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Abilities are read-only on their own, but they are derived rows and go with their channel.
        perms_needed.discard(str(Ability._meta.verbose_name))
        return deleted, counts, perms_needed, protected

    @admin.action(description="Test selected channels")
    def test_channels(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            result = channel_test(channel=channel)
            if result.success:
                self.message_user(request, f"{channel}: OK in {result.response_ms} ms", messages.SUCCESS)
            else:
                self.message_user(
                    request, f"{channel}: failed after {result.response_ms} ms: {result.message}", messages.ERROR
                )

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Channel], status: ChannelStatus) -> None:
        channels = list(queryset.exclude(status=status))
        for channel in channels:
            channel_set_status(channel=channel, status=status)
        self.message_user(request, f"Set {len(channels)} channel(s) to {status.label}.", messages.SUCCESS)

    @admin.action(description="Enable selected channels")
    def enable_channels(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        self._set_status(request, queryset, ChannelStatus.ENABLED)

    @admin.action(description="Disable selected channels")
    def disable_channels(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        self._set_status(request, queryset, ChannelStatus.MANUALLY_DISABLED)

    @admin.action(description="Duplicate selected channels (copies start disabled)")
    def duplicate_channels(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            copy = channel_duplicate(channel=channel)
            self.message_user(request, f"{channel} copied as {copy} (disabled until you enable it).", messages.SUCCESS)

    @admin.action(description="Refresh balance of selected channels")
    def refresh_balances(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            try:
                balance = channel_refresh_balance(channel=channel)
            except (BalanceUnsupported, BalanceError) as exc:
                self.message_user(request, f"{channel}: {exc}", messages.WARNING)
            else:
                self.message_user(request, f"{channel}: balance ${balance:.2f}", messages.SUCCESS)

    @admin.display(description="type", ordering="type")
    def type_name(self, obj: Channel) -> str:
        return obj.type_name

    @admin.display(description="response time", ordering="response_time")
    def response_time_ms(self, obj: Channel) -> str:
        return f"{obj.response_time} ms" if obj.test_time else "—"

    @admin.display(description="used ($)", ordering="used_quota")
    def used_quota_usd(self, obj: Channel) -> str:
        return format_usd(obj.used_quota)

    @admin.display(description="last test")
    def last_test(self, obj: Channel) -> str:
        if obj.test_time is None:
            return "never (use the “Test selected channels” action on the list)"
        outcome = "failed" if obj.last_test_error else "passed"
        return f"{outcome} at {timezone.localtime(obj.test_time):%Y-%m-%d %H:%M:%S} in {obj.response_time} ms"


@admin.register(Ability)
class AbilityAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("group", "model", "channel", "enabled", "priority", "weight", "suspend_until")
    list_filter = ("group", "enabled", "model")
    list_select_related = ("channel",)
    search_fields = ("model", "group", "channel__name")
