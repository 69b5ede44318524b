"""Channel balance refresh: provider endpoints per type, others skipped cleanly."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from channels_app.balance import BalanceError, BalanceUnsupported, channel_refresh_balance
from channels_app.models import Channel, ChannelStatus
from channels_app.tasks import refresh_all_balances

ANSWERS = {
    "/v1/dashboard/billing/subscription": {"object": "billing_subscription", "hard_limit_usd": 120.0},
    "/v1/dashboard/billing/usage": {"object": "list", "total_usage": 2550.0},  # cents
    "/dashboard/billing/credit_grants": {"total_available": 7.25, "total_remaining": 3.5},
    "/user/balance": {"is_available": True, "balance_infos": [{"currency": "CNY", "total_balance": "42.10"}]},
    "/api/v1/credits": {"data": {"total_credits": 50, "total_usage": 12.5}},
}


class Provider(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        Provider.seen.append((self.path, self.headers.get("Authorization", "")))
        body = ANSWERS.get(path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body or {"error": "not found"}).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Provider.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "channel_type, base_suffix, expected",
    [(1, "", 94.5), (8, "", 94.5), (2, "", 7.25), (12, "", 3.5), (36, "", 42.1), (20, "/api", 37.5)],
)
def test_balance_per_provider_style(make_channel, provider, channel_type, base_suffix, expected):
    channel = make_channel("m-balance", type=channel_type, base_url=provider + base_suffix)
    assert channel_refresh_balance(channel=channel) == pytest.approx(expected)
    channel.refresh_from_db()
    assert channel.balance == pytest.approx(expected) and channel.balance_updated_at is not None
    assert all(auth == "Bearer sk-upstream" for _, auth in Provider.seen)


@pytest.mark.django_db
def test_types_without_a_balance_endpoint_are_skipped(make_channel, provider):
    channel = make_channel("m-balance", type=14, base_url=provider)  # Anthropic
    with pytest.raises(BalanceUnsupported):
        channel_refresh_balance(channel=channel)
    assert not Provider.seen
    channel.refresh_from_db()
    assert channel.balance_updated_at is None


@pytest.mark.django_db
def test_a_failing_provider_raises_for_the_tasks_retry(make_channel, provider):
    channel = make_channel("m-balance", type=44, base_url=provider)  # SiliconFlow: not answered here
    with pytest.raises(BalanceError):
        channel_refresh_balance(channel=channel)


@pytest.mark.django_db
def test_the_periodic_task_refreshes_enabled_channels_of_supported_types(make_channel, provider):
    openai = make_channel("m-balance", type=1, base_url=provider)
    make_channel("m-balance", type=14, base_url=provider)
    make_channel("m-balance", type=1, base_url=provider, status=ChannelStatus.MANUALLY_DISABLED)
    assert refresh_all_balances.delay().get() == 1  # eager while testing
    assert Channel.objects.get(pk=openai.pk).balance == pytest.approx(94.5)
