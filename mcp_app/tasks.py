"""Periodic tool-list sync of upstream MCP servers (beat entry `sync-mcp-servers` in settings)."""

from __future__ import annotations

from celery import shared_task

from .services import mcp_server_sync, servers_due_for_sync


@shared_task(time_limit=120, soft_time_limit=100, autoretry_for=(ConnectionError,), retry_backoff=True, retry_jitter=True, max_retries=3)
def sync_mcp_server(server_id: int) -> bool:
    """Sync one server's tools (by id, so a late or repeated run is harmless)."""
    return mcp_server_sync(server_id=server_id).ok


@shared_task(time_limit=60)
def sync_due_mcp_servers() -> int:
    """Queue a sync for every enabled server whose auto-sync interval has elapsed."""
    due = servers_due_for_sync()
    for server_id in due:
        sync_mcp_server.delay(server_id)
    return len(due)
