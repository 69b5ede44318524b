from __future__ import annotations

from django.apps import AppConfig


class McpAppConfig(AppConfig):
    # Not called `mcp`: that name belongs to the official MCP SDK this app imports.
    name = "mcp_app"
    label = "mcp_app"
    verbose_name = "MCP gateway"
    default_auto_field = "django.db.models.BigAutoField"
