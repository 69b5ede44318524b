"""Upstream MCP servers that operators configure, their synced tools, and per-user deny lists.

Tools are exposed at `/mcp` as `<server name>.<tool name>`, so a server name may not contain a
dot. Credentials (bearer token, API key, custom headers) are encrypted at rest. Tables follow the
original fork's names (`mcp_servers`, `mcp_tools`).
"""

from __future__ import annotations

import json
from decimal import ROUND_CEILING, Decimal
from fnmatch import fnmatchcase
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from billing.models import QUOTA_PER_USD
from channels_app.fields import EncryptedTextField

SERVER_NAME_RE = r"^[A-Za-z0-9_-]{1,64}$"


def usd_to_quota(usd: Decimal) -> int:
    """USD per call -> quota units, rounded up (a price above zero is never free)."""
    return int((Decimal(usd) * QUOTA_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def matches_any(name: str, patterns: list[str]) -> bool:
    """Exact names or shell-style patterns (`search_*`), case-sensitive as tool names are."""
    return any(fnmatchcase(name, str(pattern)) for pattern in patterns)


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def _is_header_map(text: str) -> bool:
    try:
        headers = json.loads(text or "{}")
    except ValueError:
        return False
    return isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())


class ServerStatus(models.IntegerChoices):
    ENABLED = 1, "enabled"
    DISABLED = 2, "disabled"


class Transport(models.TextChoices):
    STREAMABLE_HTTP = "streamable_http", "Streamable HTTP"


class AuthType(models.TextChoices):
    NONE = "none", "none"
    BEARER = "bearer", "bearer token"
    API_KEY = "api_key", "API key header"
    CUSTOM_HEADERS = "custom_headers", "custom headers"


class McpServer(models.Model):
    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(SERVER_NAME_RE, "letters, digits, '_' and '-' only (no dots)")],
        help_text="Prefix of its tools at /mcp: <name>.<tool>.",
    )
    description = models.TextField(blank=True, default="")
    url = models.URLField("URL", max_length=500, help_text="The server's Streamable HTTP endpoint, e.g. https://host/mcp")
    transport = models.CharField(max_length=32, choices=Transport.choices, default=Transport.STREAMABLE_HTTP)
    auth_type = models.CharField(max_length=32, choices=AuthType.choices, default=AuthType.NONE)
    secret = EncryptedTextField(blank=True, default="", help_text="Bearer token or API key (encrypted at rest).")
    api_key_header = models.CharField(max_length=64, default="X-API-Key", help_text="Header that carries the API key.")
    custom_headers = EncryptedTextField(
        blank=True, default="", help_text='JSON object of headers, e.g. {"X-Token": "..."} (encrypted at rest).'
    )
    tool_allowlist = models.JSONField(
        default=list, blank=True, help_text="Tool names or patterns to expose; empty = every tool."
    )
    tool_denylist = models.JSONField(default=list, blank=True, help_text="Tool names or patterns never exposed.")
    price_per_call = models.DecimalField(
        "price per call (USD)", max_digits=14, decimal_places=6, default=Decimal(0), help_text="Billed to the user's quota."
    )
    tool_prices = models.JSONField(
        "per-tool prices (USD)", default=dict, blank=True, help_text='Overrides, e.g. {"search": 0.002}.'
    )
    auto_sync_interval_minutes = models.PositiveIntegerField(
        default=60, validators=[MaxValueValidator(1440)], help_text="Refresh the tool list this often; 0 = never."
    )
    timeout_seconds = models.PositiveIntegerField(default=30, validators=[MaxValueValidator(600)])
    status = models.IntegerField(choices=ServerStatus.choices, default=ServerStatus.ENABLED)
    priority = models.IntegerField(default=0, help_text="Higher first in tools/list.")
    last_sync_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_sync_ok = models.BooleanField(null=True, editable=False)
    last_sync_error = models.TextField(blank=True, default="", editable=False)
    last_test_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_test_ok = models.BooleanField(null=True, editable=False)
    last_test_error = models.TextField(blank=True, default="", editable=False)
    last_test_ms = models.IntegerField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "mcp_servers"
        ordering = ["-priority", "name"]
        verbose_name = "MCP server"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        for field in ("tool_allowlist", "tool_denylist"):
            if not _is_string_list(getattr(self, field)):
                errors[field] = 'a JSON list of tool names, e.g. ["search", "fetch_*"]'
        prices = self.tool_prices
        if not isinstance(prices, dict) or not all(_is_price(v) for v in prices.values()):
            errors["tool_prices"] = 'a JSON object of tool name -> USD per call, e.g. {"search": 0.002}'
        if self.auth_type == AuthType.CUSTOM_HEADERS and not _is_header_map(self.custom_headers):
            errors["custom_headers"] = 'a JSON object of header name -> value, e.g. {"X-Token": "..."}'
        if self.auth_type in (AuthType.BEARER, AuthType.API_KEY) and not self.secret:
            errors["secret"] = "this auth type needs a secret"
        if errors:
            raise ValidationError(errors)

    def auth_headers(self) -> dict[str, str]:
        """The headers that authenticate the gateway to this server (decrypted, never logged)."""
        if self.auth_type == AuthType.BEARER and self.secret:
            return {"Authorization": f"Bearer {self.secret}"}
        if self.auth_type == AuthType.API_KEY and self.secret:
            return {self.api_key_header or "X-API-Key": self.secret}
        if self.auth_type == AuthType.CUSTOM_HEADERS and self.custom_headers:
            headers = json.loads(self.custom_headers)
            return {str(k): str(v) for k, v in headers.items()}
        return {}

    def exposes(self, tool_name: str) -> bool:
        if self.tool_allowlist and not matches_any(tool_name, self.tool_allowlist):
            return False
        return not matches_any(tool_name, self.tool_denylist)

    def price_usd(self, tool_name: str) -> Decimal:
        override = (self.tool_prices or {}).get(tool_name)
        return Decimal(str(override)) if override is not None else self.price_per_call

    def price_quota(self, tool_name: str) -> int:
        return usd_to_quota(self.price_usd(tool_name))


def _is_price(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    try:
        return Decimal(str(value)) >= 0
    except ArithmeticError:
        return False


class ToolStatus(models.IntegerChoices):
    ENABLED = 1, "enabled"
    DISABLED = 2, "disabled"  # by an operator; a sync keeps it disabled
    MISSING = 3, "missing upstream"  # not in the server's last tool list


class McpTool(models.Model):
    server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="tools")
    name = models.CharField(max_length=128)
    title = models.CharField(max_length=200, blank=True, default="")
    description = models.TextField(blank=True, default="")
    input_schema = models.JSONField(default=dict, blank=True)
    status = models.IntegerField(choices=ToolStatus.choices, default=ToolStatus.ENABLED)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "mcp_tools"
        ordering = ["server", "name"]
        verbose_name = "MCP tool"
        constraints = [models.UniqueConstraint(fields=["server", "name"], name="mcp_tool_unique_name")]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.server.name}.{self.name}"


class McpUserPolicy(models.Model):
    """Tools a user may not see or call at /mcp (accounts.User stays as it is)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mcp_policy")
    denied_tools = models.JSONField(
        default=list, blank=True, help_text='Full tool names or patterns, e.g. ["github.delete_repo", "shell.*"].'
    )

    class Meta:
        db_table = "mcp_user_policies"
        verbose_name = "MCP user policy"
        verbose_name_plural = "MCP user policies"

    def __str__(self) -> str:
        return f"MCP policy of {self.user}"

    def clean(self) -> None:
        if not _is_string_list(self.denied_tools):
            raise ValidationError({"denied_tools": 'a JSON list of tool names or patterns, e.g. ["github.*"]'})
