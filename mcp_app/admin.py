"""Admin for upstream MCP servers (sync now / test actions), their tools and per-user deny lists.

Secrets are write-only in the form: the stored value is never sent back to the browser, and an
empty field on edit keeps what is stored.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from billing.models import quota_to_usd

from .models import McpServer, McpTool, McpUserPolicy, ToolStatus
from .services import mcp_server_sync, mcp_server_test

_SECRET_FIELDS = ("secret", "custom_headers")


class McpServerForm(forms.ModelForm):
    url = forms.URLField(
        label="URL", max_length=500, assume_scheme="https", help_text="The server's Streamable HTTP endpoint, e.g. https://host/mcp"
    )
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Bearer token or API key. Leave empty to keep the stored one.",
    )
    custom_headers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='JSON object, e.g. {"X-Token": "..."}. Not shown again; leave empty to keep the stored headers.',
    )

    class Meta:
        model = McpServer
        exclude: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in _SECRET_FIELDS:
            self.initial[name] = ""

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.instance.pk:
            for name in _SECRET_FIELDS:
                if not data.get(name):
                    data[name] = getattr(self.instance, name)
                    setattr(self.instance, name, data[name])
        return data


class McpToolInline(admin.TabularInline):
    model = McpTool
    extra = 0
    fields = ("name", "title", "description", "status", "synced_at")
    readonly_fields = ("name", "title", "description", "synced_at")
    can_delete = False
    show_change_link = True


def _outcome(ok: bool | None, error: str) -> str:
    if ok is None:
        return "never"
    return "ok" if ok else f"failed: {error[:120]}"


@admin.register(McpServer)
class McpServerAdmin(admin.ModelAdmin):
    form = McpServerForm
    inlines = (McpToolInline,)
    list_display = (
        "name",
        "url",
        "status",
        "priority",
        "auth_type",
        "price_usd",
        "tool_count",
        "last_sync",
        "last_test",
    )
    list_filter = ("status", "auth_type")
    search_fields = ("name", "url", "description")
    actions = ("sync_now", "test_now")
    readonly_fields = (
        "last_sync_at",
        "last_sync_ok",
        "last_sync_error",
        "last_test_at",
        "last_test_ok",
        "last_test_error",
        "last_test_ms",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "description", "url", "transport", "status", "priority")}),
        ("Authentication (encrypted at rest)", {"fields": ("auth_type", "secret", "api_key_header", "custom_headers")}),
        ("Tools and prices", {"fields": ("tool_allowlist", "tool_denylist", "price_per_call", "tool_prices")}),
        ("Sync", {"fields": ("auto_sync_interval_minutes", "timeout_seconds")}),
        ("Last sync and test", {"fields": readonly_fields}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[McpServer]:
        return super().get_queryset(request).annotate(
            enabled_tools=Count("tools", filter=Q(tools__status=ToolStatus.ENABLED))
        )

    @admin.display(description="price / call")
    def price_usd(self, obj: McpServer) -> str:
        return f"${obj.price_per_call.normalize():f}"

    @admin.display(description="tools", ordering="enabled_tools")
    def tool_count(self, obj: McpServer) -> int:
        return getattr(obj, "enabled_tools", 0)

    @admin.display(description="last sync")
    def last_sync(self, obj: McpServer) -> str:
        return _outcome(obj.last_sync_ok, obj.last_sync_error)

    @admin.display(description="last test")
    def last_test(self, obj: McpServer) -> str:
        text = _outcome(obj.last_test_ok, obj.last_test_error)
        return f"{text} ({obj.last_test_ms} ms)" if obj.last_test_ok and obj.last_test_ms is not None else text

    @admin.action(description="Sync tools now")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        for server in queryset:
            report = mcp_server_sync(server_id=server.pk)
            if report.ok:
                self.message_user(
                    request,
                    f"{server.name}: {report.tools} tools ({report.added} new, {report.missing} gone)",
                    messages.SUCCESS,
                )
            else:
                self.message_user(request, f"{server.name}: sync failed: {report.error}", messages.ERROR)

    @admin.action(description="Test connection")
    def test_now(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        for server in queryset:
            report = mcp_server_test(server_id=server.pk)
            if report.ok:
                self.message_user(
                    request, f"{server.name}: ok in {report.elapsed_ms} ms, {report.tools} tools", messages.SUCCESS
                )
            else:
                self.message_user(request, f"{server.name}: test failed: {report.error}", messages.ERROR)


@admin.register(McpTool)
class McpToolAdmin(admin.ModelAdmin):
    list_display = ("full_name_column", "status", "price", "synced_at")
    list_filter = ("status", "server")
    list_select_related = ("server",)
    search_fields = ("name", "description", "server__name")
    readonly_fields = ("server", "name", "title", "description", "input_schema", "synced_at")
    fields = ("server", "name", "title", "description", "input_schema", "status", "synced_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tools come from a sync

    @admin.display(description="tool", ordering="name")
    def full_name_column(self, obj: McpTool) -> str:
        return format_html("<code>{}</code>", obj.full_name)

    @admin.display(description="price / call")
    def price(self, obj: McpTool) -> str:
        return f"${quota_to_usd(obj.server.price_quota(obj.name)).normalize():f}"


@admin.register(McpUserPolicy)
class McpUserPolicyAdmin(admin.ModelAdmin):
    list_display = ("user", "denied_tools")
    raw_id_fields = ("user",)
    search_fields = ("user__username",)
