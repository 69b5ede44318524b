"""End to end: the official MCP Python SDK client talks to `/mcp` on the live gateway, which
forwards to an upstream MCPServer (FastMCP) process on loopback, bills and logs each call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from billing.models import ConsumeLog, LogType
from mcp_app.models import AuthType, McpServer, McpUserPolicy
from mcp_app.services import mcp_server_sync

pytestmark = pytest.mark.django_db(transaction=True)

PRICE_USD = Decimal("0.002")
PRICE_QUOTA = 1000  # 0.002 USD x 500,000 quota per USD


def with_session(url: str, key: str | None, work: Callable[[ClientSession], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await work(session)

    try:
        return asyncio.run(run())
    except BaseExceptionGroup as group:  # the SDK's task groups wrap what the session raised
        raise first_leaf(group) from group


def first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


@pytest.fixture
def calc_server(mcp_upstream: Any) -> McpServer:
    server = McpServer.objects.create(
        name="calc",
        url=mcp_upstream.url,
        auth_type=AuthType.BEARER,
        secret=mcp_upstream.token,
        price_per_call=PRICE_USD,
        tool_prices={"echo": 0},
        tool_denylist=["secret_tool"],
    )
    report = mcp_server_sync(server_id=server.pk)
    assert report.ok and report.tools == 4, report.error
    return server


def test_sdk_lists_calls_and_is_billed(live_gateway: Any, calc_server: McpServer, make_user: Any, make_key: Any) -> None:
    user = make_user(quota=100_000)
    api_key, raw = make_key(user)

    async def work(session: ClientSession) -> tuple[list[str], Any, Any]:
        tools = await session.list_tools()
        added = await session.call_tool("calc.add", {"a": 2, "b": 3})
        echoed = await session.call_tool("calc.echo", {"text": "hi"})
        return [t.name for t in tools.tools], added, echoed

    names, added, echoed = with_session(f"{live_gateway.url}/mcp", raw, work)
    assert names == ["calc.add", "calc.echo", "calc.fail"]
    assert added.is_error is False and added.content[0].text == "5"
    assert echoed.content[0].text == "hi"

    user.refresh_from_db()
    assert user.quota == 100_000 - PRICE_QUOTA  # echo is free (a per-tool override)
    assert user.used_quota == PRICE_QUOTA and user.request_count == 2
    api_key.refresh_from_db()
    assert api_key.remain_quota == 0 and api_key.used_quota == 0  # billed to the user, as the original
    logs = {log.model_name: log for log in ConsumeLog.objects.filter(user_id=user.pk, type=LogType.TOOL)}
    assert set(logs) == {"calc.add", "calc.echo"}
    assert logs["calc.add"].quota == PRICE_QUOTA and logs["calc.add"].api_key_id == api_key.pk
    assert logs["calc.add"].request_id.startswith("mcp-") and "calc.add" in logs["calc.add"].content


def test_tool_failure_is_in_band_and_billed(live_gateway: Any, calc_server: McpServer, make_user: Any, make_key: Any) -> None:
    user = make_user(quota=100_000)
    _, raw = make_key(user)
    result = with_session(f"{live_gateway.url}/mcp", raw, lambda s: s.call_tool("calc.fail", {"reason": "boom"}))
    assert result.is_error is True
    user.refresh_from_db()
    assert user.quota == 100_000 - PRICE_QUOTA  # the upstream served the call
    assert "reported an error" in ConsumeLog.objects.get(user_id=user.pk, type=LogType.TOOL).content


def test_denied_tools_are_neither_listed_nor_callable(live_gateway: Any, calc_server: McpServer, make_user: Any, make_key: Any) -> None:
    user = make_user(quota=100_000)
    _, raw = make_key(user)
    McpUserPolicy.objects.create(user=user, denied_tools=["calc.ec*"])

    async def work(session: ClientSession) -> tuple[list[str], list[MCPError]]:
        names = [t.name for t in (await session.list_tools()).tools]
        errors = []
        for name in ("calc.echo", "calc.secret_tool"):
            try:
                await session.call_tool(name, {"text": "x"})
            except MCPError as exc:
                errors.append(exc)
        return names, errors

    names, errors = with_session(f"{live_gateway.url}/mcp", raw, work)
    assert "calc.echo" not in names and "calc.secret_tool" not in names and "calc.add" in names
    assert [e.error.code for e in errors] == [-32602, -32602]
    user.refresh_from_db()
    assert user.quota == 100_000 and not ConsumeLog.objects.filter(user_id=user.pk).exists()


@pytest.mark.parametrize("key", [None, "sk-not-a-real-key"])
def test_missing_or_wrong_key_refused(live_gateway: Any, key: str | None) -> None:
    with pytest.raises(Exception) as caught:
        with_session(f"{live_gateway.url}/mcp", key, lambda s: s.list_tools())
    assert "API key" in repr(caught.value) or "401" in repr(caught.value)
    response = httpx2.post(
        f"{live_gateway.url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
        headers={"Authorization": f"Bearer {key}"} if key else {},
    )
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_unpaid_call_refused_with_jsonrpc_error(live_gateway: Any, calc_server: McpServer, make_user: Any, make_key: Any) -> None:
    user = make_user(quota=PRICE_QUOTA - 1)
    _, raw = make_key(user)
    with pytest.raises(MCPError) as caught:
        with_session(f"{live_gateway.url}/mcp", raw, lambda s: s.call_tool("calc.add", {"a": 1, "b": 1}))
    assert caught.value.error.code == -32003
    user.refresh_from_db()
    assert user.quota == PRICE_QUOTA - 1


def test_high_level_client_in_auto_mode_falls_back_to_the_handshake(
    live_gateway: Any, calc_server: McpServer, make_user: Any, make_key: Any
) -> None:
    """SDK v2's `Client` first probes the 2026 `server/discover`; the gateway refuses it and the
    client falls back to `initialize` (negotiating the newest handshake version)."""
    from mcp import Client

    user = make_user(quota=100_000)
    _, raw = make_key(user)

    async def run() -> tuple[str, list[str]]:
        async with httpx2.AsyncClient(headers={"x-api-key": raw}, timeout=30) as http:
            async with Client(streamable_http_client(f"{live_gateway.url}/mcp", http_client=http)) as client:
                tools = await client.list_tools()
                return client.protocol_version, [t.name for t in tools.tools]

    version, names = asyncio.run(run())
    assert version == "2025-11-25" and "calc.add" in names


def test_public_discovery_server_with_the_sdk(live_gateway: Any) -> None:
    async def run() -> tuple[list[str], str]:
        async with (
            streamable_http_client(f"{live_gateway.url}/.well-known/mcp") as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool("one_api_public_docs", {"topic": "mcp"})
            return [t.name for t in tools.tools], result.content[0].text

    names, text = asyncio.run(run())
    assert names == ["one_api_public_docs"] and f"{live_gateway.url}/mcp" in text
