"""Writes for the MCP gateway: sync and test upstream servers, call a tool for a user (billed).

Sync and test are sync functions (admin actions, Celery) that run the SDK's async client
through `async_to_sync`; `mcp_tool_call` is async, for the `/mcp` view.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.db import transaction
from django.utils import timezone

from billing.services import ToolChargeOutcome, tool_call_charge, tool_call_finish, tool_call_refund

from . import upstream
from .models import McpServer, McpTool, ServerStatus, ToolStatus
from .selectors import resolve_tool

logger = logging.getLogger(__name__)


def target_for(server: McpServer) -> upstream.UpstreamTarget:
    return upstream.UpstreamTarget(url=server.url, headers=server.auth_headers(), timeout=float(server.timeout_seconds))


@dataclass(frozen=True)
class SyncReport:
    ok: bool
    tools: int = 0
    added: int = 0
    missing: int = 0
    error: str = ""


@dataclass(frozen=True)
class TestReport:
    ok: bool
    elapsed_ms: int = 0
    tools: int = 0
    error: str = ""


def mcp_server_sync(*, server_id: int) -> SyncReport:
    """Fetch the server's tool list and store it: new tools are added enabled, changed ones
    updated, vanished ones marked missing (an operator's "disabled" is kept)."""
    server = McpServer.objects.filter(pk=server_id).first()
    if server is None:
        return SyncReport(ok=False, error="no such MCP server")
    now = timezone.now()
    try:
        tools = async_to_sync(upstream.list_tools)(target_for(server))
    except upstream.UpstreamFailure as exc:
        logger.warning("MCP server %s: sync failed: %s", server.name, exc)
        McpServer.objects.filter(pk=server_id).update(last_sync_at=now, last_sync_ok=False, last_sync_error=str(exc)[:2000])
        return SyncReport(ok=False, error=str(exc))
    added = 0
    with transaction.atomic():
        existing = {tool.name: tool for tool in McpTool.objects.filter(server_id=server_id).select_for_update()}
        for found in tools:
            fields = {
                "title": found.title[:200],
                "description": found.description,
                "input_schema": found.input_schema,
                "synced_at": now,
            }
            row = existing.get(found.name)
            if row is None:
                McpTool.objects.create(server_id=server_id, name=found.name[:128], **fields)
                added += 1
                continue
            if row.status == ToolStatus.MISSING:
                fields["status"] = ToolStatus.ENABLED
            McpTool.objects.filter(pk=row.pk).update(**fields)
        gone = set(existing) - {t.name for t in tools}
        missing = McpTool.objects.filter(server_id=server_id, name__in=gone, status=ToolStatus.ENABLED).update(
            status=ToolStatus.MISSING
        )
        McpServer.objects.filter(pk=server_id).update(last_sync_at=now, last_sync_ok=True, last_sync_error="")
    return SyncReport(ok=True, tools=len(tools), added=added, missing=missing)


def mcp_server_test(*, server_id: int) -> TestReport:
    """Connect, ping and list tools; record the outcome and round-trip time on the server."""
    server = McpServer.objects.filter(pk=server_id).first()
    if server is None:
        return TestReport(ok=False, error="no such MCP server")
    now = timezone.now()
    try:
        elapsed_ms, count = async_to_sync(upstream.probe)(target_for(server))
    except upstream.UpstreamFailure as exc:
        McpServer.objects.filter(pk=server_id).update(
            last_test_at=now, last_test_ok=False, last_test_error=str(exc)[:2000], last_test_ms=None
        )
        return TestReport(ok=False, error=str(exc))
    McpServer.objects.filter(pk=server_id).update(
        last_test_at=now, last_test_ok=True, last_test_error="", last_test_ms=elapsed_ms
    )
    return TestReport(ok=True, elapsed_ms=elapsed_ms, tools=count)


def servers_due_for_sync(now: datetime | None = None) -> list[int]:
    """Enabled servers with auto-sync on whose interval has elapsed since their last sync."""
    now = now or timezone.now()
    due = []
    for server_id, minutes, last in McpServer.objects.filter(
        status=ServerStatus.ENABLED, auto_sync_interval_minutes__gt=0
    ).values_list("pk", "auto_sync_interval_minutes", "last_sync_at"):
        if last is None or (now - last).total_seconds() >= minutes * 60:
            due.append(server_id)
    return due


class ToolCallRefused(Exception):
    """A tools/call answered with a JSON-RPC error (the tool is unknown, or quota is short)."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


INVALID_PARAMS = -32602
INSUFFICIENT_QUOTA = -32003  # server-defined range (-32000..-32099) of JSON-RPC 2.0


@dataclass(frozen=True)
class Caller:
    user_id: int
    username: str
    api_key_id: int | None
    key_name: str


def _in_band_error(text: str) -> dict[str, Any]:
    # https://modelcontextprotocol.io/specification/2025-06-18/server/tools#error-handling
    return {"content": [{"type": "text", "text": text}], "isError": True}


async def mcp_tool_call(*, caller: Caller, full_name: str, arguments: dict[str, Any] | None, call_id: str) -> dict[str, Any]:
    """Forward one tools/call to its upstream server, billed per call from the user's quota.

    Unknown or hidden tools and unpaid calls are refused before anything is sent (ToolCallRefused).
    An upstream that cannot serve the call is answered in-band (`isError: true`) and refunded;
    a tool that reports its own failure (`isError` from upstream) was served and stays billed.
    """
    tool = await sync_to_async(resolve_tool)(user_id=caller.user_id, full_name=full_name)
    if tool is None:
        raise ToolCallRefused(INVALID_PARAMS, f"Unknown tool: {full_name}")
    server = await McpServer.objects.aget(pk=tool.server_id)
    description = f"MCP tool call: {tool.full_name} (server {server.pk})"
    outcome = await sync_to_async(tool_call_charge)(
        call_id=call_id,
        user_id=caller.user_id,
        api_key_id=caller.api_key_id,
        tool_name=tool.full_name,
        quota=tool.price_quota,
        username=caller.username,
        token_name=caller.key_name,
        content=description,
    )
    if outcome is ToolChargeOutcome.REFUSED:
        raise ToolCallRefused(
            INSUFFICIENT_QUOTA,
            f"insufficient user quota: {tool.full_name} costs {tool.price_quota} quota per call",
            {"code": "insufficient_user_quota", "price_quota": tool.price_quota},
        )
    started = time.monotonic()
    try:
        result = await upstream.call_tool(target_for(server), tool.name, arguments)
    except upstream.UpstreamFailure as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        logger.warning("MCP tool %s failed upstream: %s", tool.full_name, exc)
        if outcome is ToolChargeOutcome.CHARGED:
            await sync_to_async(tool_call_refund)(call_id=call_id, reason=f"{description}: refunded, {exc}", elapsed_ms=elapsed)
        return _in_band_error(f"The MCP server '{server.name}' could not run {tool.name}: {exc}")
    elapsed = int((time.monotonic() - started) * 1000)
    note = f"{description}; the tool reported an error" if result.get("isError") else None
    await sync_to_async(tool_call_finish)(call_id=call_id, elapsed_ms=elapsed, content=note)
    return result
