"""Talking to an upstream MCP server with the official SDK's Streamable HTTP client.

Each operation opens a session (initialize handshake), does its work and closes it (DELETE):
tool calls are not on the hot relay path, and a fresh session never outlives a server's
restart. https://py.sdk.modelcontextprotocol.io/v2/migration/ explains the v2 client API
(`streamable_http_client` with an `httpx2.AsyncClient` carrying headers and timeouts).
No Django here: callers pass an `UpstreamTarget` built from the `McpServer` row.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import PaginatedRequestParams

MAX_TOOL_PAGES = 50  # a server that paginates forever must not hang a sync


@dataclass(frozen=True)
class UpstreamTarget:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0


@dataclass(frozen=True)
class UpstreamTool:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]


class UpstreamFailure(Exception):
    """The upstream could not be reached, refused the session, or answered with a protocol error."""


def _describe(exc: BaseException) -> str:
    # anyio task groups wrap the real error in an ExceptionGroup: report the innermost ones.
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    if isinstance(exc, MCPError):
        return f"MCP error {exc.error.code}: {exc.error.message}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if str(exc) else text


@asynccontextmanager
async def open_session(target: UpstreamTarget) -> AsyncIterator[ClientSession]:
    timeout = httpx2.Timeout(target.timeout, read=target.timeout)
    async with (
        httpx2.AsyncClient(headers=target.headers, timeout=timeout) as http,
        streamable_http_client(target.url, http_client=http) as (read_stream, write_stream),
        ClientSession(read_stream, write_stream, read_timeout_seconds=target.timeout) as session,
    ):
        await session.initialize()
        yield session


async def _guarded(target: UpstreamTarget, work: Any) -> Any:
    try:
        with anyio.fail_after(target.timeout + 5):
            async with open_session(target) as session:
                return await work(session)
    except UpstreamFailure:
        raise
    except Exception as exc:  # every failure of a remote server is reported, never raised raw
        raise UpstreamFailure(_describe(exc)) from exc
    except BaseExceptionGroup as group:
        raise UpstreamFailure(_describe(group)) from group


async def list_tools(target: UpstreamTarget) -> list[UpstreamTool]:
    async def work(session: ClientSession) -> list[UpstreamTool]:
        tools: list[UpstreamTool] = []
        cursor: str | None = None
        for _ in range(MAX_TOOL_PAGES):
            params = PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            for tool in page.tools:
                tools.append(
                    UpstreamTool(
                        name=tool.name,
                        title=tool.title or "",
                        description=tool.description or "",
                        input_schema=dict(tool.input_schema or {"type": "object"}),
                    )
                )
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    result: list[UpstreamTool] = await _guarded(target, work)
    return result


async def call_tool(target: UpstreamTarget, name: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
    """The tool's CallToolResult as wire JSON (camelCase, as our own clients expect it)."""

    async def work(session: ClientSession) -> dict[str, Any]:
        result = await session.call_tool(name, arguments or {})
        payload: dict[str, Any] = result.model_dump(
            by_alias=True, mode="json", exclude_none=True, exclude={"result_type"}
        )
        payload.setdefault("isError", False)
        return payload

    result: dict[str, Any] = await _guarded(target, work)
    return result


async def probe(target: UpstreamTarget) -> tuple[int, int]:
    """Initialize, ping and list tools: (elapsed ms, number of tools)."""
    started = time.monotonic()

    async def work(session: ClientSession) -> int:
        await session.send_ping()
        return len((await session.list_tools()).tools)

    count: int = await _guarded(target, work)
    return int((time.monotonic() - started) * 1000), count
