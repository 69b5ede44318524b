"""`/mcp` over Django's test client: auth, the transport rules, sessions, tools/list policy, and
tools/call refusals that never reach an upstream (unknown, hidden, unpaid)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from django.test import Client

from billing.models import ConsumeLog
from mcp_app import sessions
from mcp_app.models import McpServer, McpTool, McpUserPolicy, ServerStatus, ToolStatus
from mcp_app.protocol import LATEST_VERSION

pytestmark = pytest.mark.django_db

JSON = "application/json"
ACCEPT = "application/json, text/event-stream"


def rpc(method: str, params: dict[str, Any] | None = None, msg_id: int | None = 1) -> bytes:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        body["params"] = params
    if msg_id is not None:
        body["id"] = msg_id
    return orjson.dumps(body)


class McpCaller:
    def __init__(self, key: str) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {key}", "Accept": ACCEPT}
        self.session: str | None = None

    def post(self, body: bytes, **headers: str) -> Any:
        sent = {**self.headers, **headers}
        if self.session and "Mcp-Session-Id" not in headers:
            sent["Mcp-Session-Id"] = self.session
        return self.client.post("/mcp", data=body, content_type=JSON, headers=sent)

    def initialize(self, version: str = LATEST_VERSION) -> dict[str, Any]:
        response = self.post(rpc("initialize", {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}))
        assert response.status_code == 200
        self.session = response["Mcp-Session-Id"]
        return response.json()["result"]

    def call(self, method: str, params: dict[str, Any] | None = None, msg_id: int = 2) -> dict[str, Any]:
        response = self.post(rpc(method, params, msg_id))
        assert response.status_code == 200, response.content
        return response.json()


@pytest.fixture
def caller(make_user: Any, make_key: Any) -> McpCaller:
    user = make_user(quota=1_000_000)
    _, raw = make_key(user)
    mcp = McpCaller(raw)
    mcp.user = user  # type: ignore[attr-defined]
    return mcp


def make_server(name: str = "calc", **fields: Any) -> McpServer:
    server = McpServer.objects.create(name=name, url="http://127.0.0.1:9/mcp", **fields)
    for tool in ("add", "echo", "secret_tool"):
        McpTool.objects.create(server=server, name=tool, description=f"{tool} tool", input_schema={"type": "object"})
    return server


def test_no_key_is_401_with_bearer_challenge() -> None:
    response = Client().post("/mcp", data=rpc("initialize", {}), content_type=JSON)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == -32001


def test_wrong_key_is_401(db: Any) -> None:
    response = Client().post("/mcp", data=rpc("initialize", {}), content_type=JSON, headers={"x-api-key": "sk-nope"})
    assert response.status_code == 401
    assert "invalid API key" in response.json()["error"]["message"]


def test_initialize_negotiates_version_and_issues_session(caller: McpCaller) -> None:
    result = caller.initialize("2025-06-18")
    assert result["protocolVersion"] == "2025-06-18"
    assert result["capabilities"] == {"tools": {"listChanged": False}}
    assert caller.session and all(0x21 <= ord(c) <= 0x7E for c in caller.session)
    other = McpCaller(caller.headers["Authorization"].split(" ", 1)[1])
    assert other.initialize("1999-01-01")["protocolVersion"] == LATEST_VERSION


def test_session_required_after_initialize(caller: McpCaller) -> None:
    response = caller.post(rpc("tools/list"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32600
    caller.initialize()
    assert caller.call("ping")["result"] == {}
    assert caller.post(rpc("ping"), **{"Mcp-Session-Id": "forged"}).status_code == 404


def test_session_is_bound_to_its_key(caller: McpCaller, make_key: Any) -> None:
    caller.initialize()
    _, other_key = make_key(caller.user)  # type: ignore[attr-defined]
    response = Client().post(
        "/mcp", data=rpc("ping"), content_type=JSON, headers={"Authorization": f"Bearer {other_key}", "Mcp-Session-Id": caller.session or ""}
    )
    assert response.status_code == 404


def test_delete_ends_the_session(caller: McpCaller) -> None:
    caller.initialize()
    response = caller.client.delete("/mcp", headers={**caller.headers, "Mcp-Session-Id": caller.session or ""})
    assert response.status_code == 204
    assert caller.post(rpc("ping")).status_code == 404


def test_notifications_are_202_and_get_is_405(caller: McpCaller) -> None:
    caller.initialize()
    response = caller.post(rpc("notifications/initialized", msg_id=None))
    assert response.status_code == 202 and response.content == b""
    assert caller.client.get("/mcp", headers={**caller.headers, "Accept": "text/event-stream"}).status_code == 405


def test_bad_json_unknown_method_and_version_header(caller: McpCaller) -> None:
    assert caller.post(b"{not json").json()["error"]["code"] == -32700
    caller.initialize()
    assert caller.call("resources/list")["error"]["code"] == -32601
    assert caller.post(rpc("ping"), **{"MCP-Protocol-Version": "1999-01-01"}).status_code == 400


def test_foreign_origin_refused(caller: McpCaller) -> None:
    response = caller.post(rpc("initialize", {}), Origin="http://evil.example")
    assert response.status_code == 403


def test_tools_list_applies_server_and_user_policies(caller: McpCaller) -> None:
    make_server(tool_denylist=["secret_*"], priority=1)
    make_server("hidden", status=ServerStatus.DISABLED)
    other = make_server("other", tool_allowlist=["echo"])
    McpTool.objects.filter(server=other, name="echo").update(status=ToolStatus.MISSING)
    McpUserPolicy.objects.create(user=caller.user, denied_tools=["calc.echo"])  # type: ignore[attr-defined]
    caller.initialize()
    tools = caller.call("tools/list")["result"]["tools"]
    assert [t["name"] for t in tools] == ["calc.add"]
    assert tools[0]["inputSchema"] == {"type": "object"} and tools[0]["description"] == "add tool"


@pytest.mark.parametrize("name", ["calc.secret_tool", "calc.echo", "calc.nothing", "nodot", "hidden.add"])
def test_hidden_or_unknown_tools_are_not_callable(caller: McpCaller, name: str) -> None:
    make_server(tool_denylist=["secret_tool"])
    make_server("hidden", status=ServerStatus.DISABLED)
    McpUserPolicy.objects.create(user=caller.user, denied_tools=["calc.echo"])  # type: ignore[attr-defined]
    caller.initialize()
    error = caller.call("tools/call", {"name": name, "arguments": {}})["error"]
    assert error["code"] == -32602 and name in error["message"]
    assert not ConsumeLog.objects.exists()


def test_call_refused_when_quota_cannot_cover_price(caller: McpCaller) -> None:
    make_server(price_per_call=Decimal("5"))  # 2,500,000 quota > the user's 1,000,000
    caller.initialize()
    error = caller.call("tools/call", {"name": "calc.add", "arguments": {"a": 1, "b": 2}})["error"]
    assert error["code"] == -32003 and error["data"]["code"] == "insufficient_user_quota"
    caller.user.refresh_from_db()  # type: ignore[attr-defined]
    assert caller.user.quota == 1_000_000 and not ConsumeLog.objects.exists()  # type: ignore[attr-defined]


def test_unreachable_upstream_is_in_band_error_and_refunded(caller: McpCaller) -> None:
    make_server(price_per_call=Decimal("0.01"), timeout_seconds=2)  # port 9: nothing listens
    caller.initialize()
    result = caller.call("tools/call", {"name": "calc.add", "arguments": {"a": 1, "b": 2}})["result"]
    assert result["isError"] is True and "could not run add" in result["content"][0]["text"]
    caller.user.refresh_from_db()  # type: ignore[attr-defined]
    assert caller.user.quota == 1_000_000  # type: ignore[attr-defined]
    log = ConsumeLog.objects.get()
    assert log.quota == 0 and log.status_code == 502 and log.model_name == "calc.add"


def test_invalid_params(caller: McpCaller) -> None:
    caller.initialize()
    assert caller.call("tools/call", {"arguments": {}})["error"]["code"] == -32602
    assert caller.call("tools/call", {"name": "calc.add", "arguments": [1]})["error"]["code"] == -32602


def test_call_ids_are_stable_per_session_and_request() -> None:
    _, first = sessions.issue(key_id=1, protocol_version=LATEST_VERSION)
    _, second = sessions.issue(key_id=1, protocol_version=LATEST_VERSION)
    assert first.call_id(7) == first.call_id(7) != first.call_id("7")
    assert first.call_id(7) != second.call_id(7) and len(first.call_id(7)) <= 64
