"""Reads for the `/mcp` endpoint: the tools a user may see and call, with their prices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .models import McpServer, McpTool, McpUserPolicy, ServerStatus, ToolStatus, matches_any


@dataclass(frozen=True)
class VisibleTool:
    full_name: str  # "<server>.<tool>"
    name: str  # the upstream tool name
    title: str
    description: str
    input_schema: dict[str, Any]
    server_id: int
    server_name: str
    price_quota: int

    def as_mcp(self) -> dict[str, Any]:
        """The `Tool` object of a tools/list result (https://modelcontextprotocol.io/specification/2025-06-18/server/tools)."""
        schema = self.input_schema if self.input_schema.get("type") == "object" else {"type": "object"}
        tool: dict[str, Any] = {"name": self.full_name, "description": self.description, "inputSchema": schema}
        if self.title:
            tool["title"] = self.title
        return tool


def user_denied_tools(user_id: int) -> list[str]:
    policy = McpUserPolicy.objects.filter(user_id=user_id).values_list("denied_tools", flat=True).first()
    return [str(p) for p in policy] if isinstance(policy, list) else []


def _visible(tools: Any, denied: list[str]) -> list[VisibleTool]:
    out: list[VisibleTool] = []
    for tool in tools:
        server: McpServer = tool.server
        full_name = f"{server.name}.{tool.name}"
        if not server.exposes(tool.name) or matches_any(full_name, denied):
            continue
        out.append(
            VisibleTool(
                full_name=full_name,
                name=tool.name,
                title=tool.title,
                description=tool.description,
                input_schema=tool.input_schema if isinstance(tool.input_schema, dict) else {},
                server_id=server.pk,
                server_name=server.name,
                price_quota=server.price_quota(tool.name),
            )
        )
    return out


def _enabled_tools() -> Any:
    return McpTool.objects.filter(status=ToolStatus.ENABLED, server__status=ServerStatus.ENABLED).select_related(
        "server"
    )


def visible_tools(*, user_id: int) -> list[VisibleTool]:
    """Enabled tools of enabled servers, by server priority, after the server's allow/deny lists
    and the user's own deny list."""
    tools = _enabled_tools().order_by("-server__priority", "server__name", "name")
    return _visible(tools, user_denied_tools(user_id))


def resolve_tool(*, user_id: int, full_name: str) -> VisibleTool | None:
    """The tool a `tools/call` names, if this user may call it (a hidden tool is as if missing)."""
    server_name, dot, tool_name = full_name.partition(".")
    if not dot or not tool_name:
        return None
    tools = _enabled_tools().filter(server__name=server_name, name=tool_name)
    found = _visible(tools, user_denied_tools(user_id))
    return found[0] if found else None
