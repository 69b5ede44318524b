"""Every relayed request leaves a trace row (timings, retries) linked to its consume log row."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from billing.models import ConsumeLog
from relay.models import Trace

from .helpers import post, wait_for

SETTLE = 1.0  # seconds: more than CACHE_CHANGE_POLL_SECONDS (0.2) plus a reload

pytestmark = pytest.mark.django_db(transaction=True)


def chat(model: str, stream: bool = False) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20, "stream": stream}


def stream_post(url: str, body: dict[str, object], headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
    import json
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=20) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()


@pytest.mark.parametrize("stream", [False, True])
def test_a_trace_per_request_with_ordered_marks(live_gateway, make_user, make_key, make_channel, unique_model, stream):
    make_channel(unique_model, scenario="words=10,slow=5" if stream else "ttfb=20")
    _, raw = make_key(make_user())
    url = live_gateway.url + "/v1/chat/completions"
    if stream:
        status, headers, text = stream_post(url, chat(unique_model, True), {"Authorization": f"Bearer {raw}"})
        assert "[DONE]" in text
    else:
        status, headers, _ = post(url, chat(unique_model), {"Authorization": f"Bearer {raw}"})
    assert status == 200
    request_id = headers["x-oneapi-request-id"]
    trace = wait_for(lambda: Trace.objects.filter(request_id=request_id).first(), timeout=10)
    log = ConsumeLog.objects.get(request_id=request_id)
    assert (trace.user_id, trace.api_key_id, trace.channel_id) == (log.user_id, log.api_key_id, log.channel_id)
    assert trace.model == unique_model and trace.is_stream is stream and trace.status_code == 200
    assert trace.caller_format == "chat" and trace.retries == 0 and trace.error == ""
    marks = [trace.forwarded_ms, trace.upstream_first_byte_ms, trace.first_client_byte_ms, trace.upstream_done_ms]
    assert all(mark is not None for mark in marks)
    assert 0 <= trace.forwarded_ms <= trace.upstream_first_byte_ms <= trace.completed_ms
    assert trace.upstream_first_byte_ms >= trace.forwarded_ms + (0 if stream else 15)  # the fake's 20 ms
    if stream:
        # The client sees the first event before the upstream is done (10 words, 5 ms apart).
        assert trace.first_client_byte_ms < trace.upstream_done_ms <= trace.completed_ms
    else:
        assert trace.upstream_done_ms <= trace.first_client_byte_ms <= trace.completed_ms


def test_retries_are_counted_and_the_admin_links_log_to_trace(
    live_gateway, make_user, make_key, make_channel, unique_model, admin_user
):
    make_channel(unique_model, scenario="500", priority=10)
    make_channel(unique_model, priority=0)
    time.sleep(SETTLE)  # the gateway picks up both channels within its poll interval
    _, raw = make_key(make_user())
    status, headers, _ = post(live_gateway.url + "/v1/chat/completions", chat(unique_model), {"Authorization": f"Bearer {raw}"})
    assert status == 200
    request_id = headers["x-oneapi-request-id"]
    trace = wait_for(lambda: Trace.objects.filter(request_id=request_id).first(), timeout=10)
    assert trace.retries == 1
    log = ConsumeLog.objects.get(request_id=request_id)
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/admin/billing/consumelog/{log.pk}/change/")
    assert page.status_code == 200 and f"/admin/relay/trace/?request_id={request_id}" in page.content.decode()
    listing = client.get(f"/admin/relay/trace/?request_id={request_id}")
    assert listing.status_code == 200 and request_id in listing.content.decode()
    detail = client.get(f"/admin/relay/trace/{trace.pk}/change/")
    assert detail.status_code == 200 and "first upstream byte" in detail.content.decode()


def test_refused_requests_leave_no_trace(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model)
    _, raw = make_key(make_user())
    url, auth = live_gateway.url + "/v1/chat/completions", {"Authorization": f"Bearer {raw}"}
    status, refused, _ = post(url, {"model": unique_model}, auth)
    assert status == 400
    status, served, _ = post(url, chat(unique_model), auth)
    assert status == 200
    wait_for(lambda: Trace.objects.filter(request_id=served["x-oneapi-request-id"]).exists(), timeout=10)
    assert not Trace.objects.filter(request_id=refused["x-oneapi-request-id"]).exists()
