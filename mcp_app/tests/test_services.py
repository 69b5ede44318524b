"""Sync, test, auto-sync scheduling, admin actions, secrets at rest, and per-call billing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.utils import timezone

from billing.models import ChargeStatus, ConsumeLog, LogType, RequestCharge
from billing.services import ToolChargeOutcome, tool_call_charge, tool_call_refund
from mcp_app.models import AuthType, McpServer, McpTool, ToolStatus, usd_to_quota
from mcp_app.services import mcp_server_sync, mcp_server_test, servers_due_for_sync
from mcp_app.tasks import sync_due_mcp_servers

pytestmark = pytest.mark.django_db


def upstream_server(upstream: Any, **fields: Any) -> McpServer:
    values = {"name": "calc", "url": upstream.url, "auth_type": AuthType.BEARER, "secret": upstream.token, **fields}
    return McpServer.objects.create(**values)


def test_sync_adds_updates_and_marks_missing(mcp_upstream: Any) -> None:
    server = upstream_server(mcp_upstream)
    McpTool.objects.create(server=server, name="gone", description="old")
    McpTool.objects.create(server=server, name="echo", description="stale", status=ToolStatus.DISABLED)
    report = mcp_server_sync(server_id=server.pk)
    assert report.ok and (report.tools, report.added, report.missing) == (4, 3, 1)
    tools = {t.name: t for t in server.tools.all()}
    assert tools["gone"].status == ToolStatus.MISSING
    assert tools["echo"].status == ToolStatus.DISABLED and tools["echo"].description == "Say the text back."
    assert tools["add"].input_schema["required"] == ["a", "b"]
    server.refresh_from_db()
    assert server.last_sync_ok is True and server.last_sync_at is not None


def test_sync_and_test_record_failures(mcp_upstream: Any) -> None:
    server = upstream_server(mcp_upstream, secret="wrong-token")
    report = mcp_server_sync(server_id=server.pk)
    assert not report.ok and report.error
    test = mcp_server_test(server_id=server.pk)
    server.refresh_from_db()
    assert not test.ok and server.last_sync_ok is False and server.last_test_ok is False
    assert server.last_test_error == test.error
    assert not mcp_server_sync(server_id=999_999).ok


def test_connection_test_measures_round_trip(mcp_upstream: Any) -> None:
    server = upstream_server(mcp_upstream)
    report = mcp_server_test(server_id=server.pk)
    assert report.ok and report.tools == 4 and report.elapsed_ms >= 0
    server.refresh_from_db()
    assert server.last_test_ok is True and server.last_test_ms == report.elapsed_ms


def test_secrets_are_encrypted_at_rest() -> None:
    server = McpServer.objects.create(
        name="vault", url="https://example.com/mcp", auth_type=AuthType.CUSTOM_HEADERS, custom_headers='{"X-Token": "t0p"}'
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT custom_headers FROM mcp_servers WHERE id = %s", [server.pk])
        stored = cursor.fetchone()[0]
    assert "t0p" not in stored and stored.startswith("enc:")
    assert McpServer.objects.get(pk=server.pk).auth_headers() == {"X-Token": "t0p"}


def test_validation_of_names_lists_and_prices() -> None:
    server = McpServer(name="has.dot", url="https://example.com/mcp", tool_allowlist="add")
    with pytest.raises(ValidationError) as caught:
        server.full_clean()
    assert {"name", "tool_allowlist"} <= set(caught.value.message_dict)
    server = McpServer(name="ok", url="https://example.com/mcp", auth_type=AuthType.BEARER, tool_prices={"a": "x"})
    with pytest.raises(ValidationError) as caught:
        server.full_clean()
    assert {"secret", "tool_prices"} <= set(caught.value.message_dict)
    assert usd_to_quota(Decimal("0.0000001")) == 1 and usd_to_quota(Decimal("0.002")) == 1000


def test_auto_sync_picks_due_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    now = timezone.now()
    never = McpServer.objects.create(name="never", url="https://a.example/mcp")
    recent = McpServer.objects.create(name="recent", url="https://b.example/mcp", last_sync_at=now - timedelta(minutes=5))
    stale = McpServer.objects.create(name="stale", url="https://c.example/mcp", last_sync_at=now - timedelta(hours=2))
    McpServer.objects.create(name="off", url="https://d.example/mcp", auto_sync_interval_minutes=0)
    assert sorted(servers_due_for_sync(now)) == sorted([never.pk, stale.pk])
    queued: list[int] = []
    monkeypatch.setattr("mcp_app.tasks.sync_mcp_server.delay", queued.append)
    assert sync_due_mcp_servers() == 2 and recent.pk not in queued


def test_admin_sync_and_test_actions(mcp_upstream: Any, make_user: Any) -> None:
    admin = make_user(role=100)
    server = upstream_server(mcp_upstream)
    client = Client()
    client.force_login(admin)
    for action in ("sync_now", "test_now"):
        response = client.post(
            "/admin/mcp_app/mcpserver/", {"action": action, "_selected_action": [server.pk]}, follow=True
        )
        notes = [str(m) for m in response.context["messages"]]
        assert response.status_code == 200 and len(notes) == 1
        assert notes[0].startswith("calc: ") and "failed" not in notes[0], notes
    assert server.tools.count() == 4
    page = client.get(f"/admin/mcp_app/mcpserver/{server.pk}/change/").content.decode()
    assert mcp_upstream.token not in page  # secrets are write-only in the form


def test_admin_edit_keeps_secret_when_left_empty(mcp_upstream: Any, make_user: Any) -> None:
    admin = make_user(role=100)
    server = upstream_server(mcp_upstream)
    client = Client()
    client.force_login(admin)
    form = {
        "name": "calc",
        "description": "",
        "url": mcp_upstream.url,
        "transport": "streamable_http",
        "status": 1,
        "priority": 3,
        "auth_type": "bearer",
        "secret": "",
        "api_key_header": "X-API-Key",
        "custom_headers": "",
        "tool_allowlist": "[]",
        "tool_denylist": "[]",
        "price_per_call": "0.5",
        "tool_prices": "{}",
        "auto_sync_interval_minutes": 60,
        "timeout_seconds": 30,
        "tools-TOTAL_FORMS": 0,
        "tools-INITIAL_FORMS": 0,
    }
    response = client.post(f"/admin/mcp_app/mcpserver/{server.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    server.refresh_from_db()
    assert server.secret == mcp_upstream.token and server.priority == 3 and server.price_per_call == Decimal("0.5")


def test_tool_charge_is_idempotent_per_call_id(make_user: Any) -> None:
    user = make_user(quota=5000)
    args = {"user_id": user.pk, "api_key_id": None, "tool_name": "calc.add", "quota": 1000}
    assert tool_call_charge(call_id="mcp-a", **args) is ToolChargeOutcome.CHARGED
    assert tool_call_charge(call_id="mcp-a", **args) is ToolChargeOutcome.ALREADY_CHARGED
    user.refresh_from_db()
    assert (user.quota, user.used_quota, user.request_count) == (4000, 1000, 1)
    log = ConsumeLog.objects.get(request_id="mcp-a")
    assert log.type == LogType.TOOL and log.model_name == "calc.add" and log.quota == 1000


def test_refund_once_and_a_retry_after_refund_is_billed(make_user: Any) -> None:
    user = make_user(quota=5000)
    args = {"user_id": user.pk, "api_key_id": None, "tool_name": "calc.add", "quota": 1000}
    tool_call_charge(call_id="mcp-b", **args)
    assert tool_call_refund(call_id="mcp-b", reason="upstream down") is True
    assert tool_call_refund(call_id="mcp-b", reason="again") is False
    user.refresh_from_db()
    assert (user.quota, user.used_quota, user.request_count) == (5000, 0, 0)
    assert RequestCharge.objects.get(request_id="mcp-b").status == ChargeStatus.REFUNDED
    assert tool_call_charge(call_id="mcp-b", **args) is ToolChargeOutcome.CHARGED
    user.refresh_from_db()
    assert user.quota == 4000 and ConsumeLog.objects.get(request_id="mcp-b").quota == 1000


def test_charge_refused_without_quota_or_when_disabled(make_user: Any) -> None:
    poor = make_user(quota=999)
    args = {"api_key_id": None, "tool_name": "calc.add", "quota": 1000}
    assert tool_call_charge(call_id="mcp-c", user_id=poor.pk, **args) is ToolChargeOutcome.REFUSED
    disabled = make_user(quota=10_000)
    disabled.status = 2
    disabled.save()
    assert tool_call_charge(call_id="mcp-d", user_id=disabled.pk, **args) is ToolChargeOutcome.REFUSED
    assert not RequestCharge.objects.exists() and not ConsumeLog.objects.exists()
