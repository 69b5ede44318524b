"""SIGTERM: stop accepting, let open streams finish up to the deadline, bill the ones cut there.

The gateway runs as in production (uvicorn's --timeout-graceful-shutdown, here 2 s through
UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN). A stream that ends within the deadline completes normally;
one still running at the deadline is cut, and billed for what the client had received.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time
from urllib.parse import urlparse

import pytest

from billing.models import ChargeStatus, ConsumeLog, RequestCharge
from conftest import start_gateway

from .helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

GRACE_SECONDS = 2


def open_stream(base_url: str, key: str, model: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    parsed = urlparse(base_url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 500}
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200
    return conn, response


def read_events(response: http.client.HTTPResponse, until: int | None = None) -> tuple[list[bytes], bool]:
    """SSE data lines; stops after `until` of them, or at the end (cut or not)."""
    events: list[bytes] = []
    try:
        while until is None or len(events) < until:
            line = response.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                events.append(line[6:].strip())
    except (http.client.IncompleteRead, ConnectionError, OSError):
        return events, True
    return events, bool(events) and events[-1] != b"[DONE]"


def refuses_connections(base_url: str) -> bool:
    parsed = urlparse(base_url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=1):
            return False
    except OSError:
        return True


def delivered_words(events: list[bytes]) -> int:
    words = 0
    for data in events:
        if data == b"[DONE]":
            continue
        for choice in json.loads(data).get("choices") or []:
            words += len((choice.get("delta") or {}).get("content", "").split())
    return words


def test_a_stream_cut_at_the_deadline_is_billed_for_what_was_sent(
    tmp_path, make_user, make_key, make_channel, unique_model
):
    make_channel(unique_model, scenario="words=80,slow=150")  # 12 s: longer than the grace period
    _, raw = make_key(make_user())
    gateway = start_gateway(tmp_path, {"UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN": str(GRACE_SECONDS)})
    conn, response = open_stream(gateway.url, raw, unique_model)
    request_id = response.getheader("x-oneapi-request-id")
    first, _ = read_events(response, until=3)
    stopped_at = time.monotonic()
    gateway.process.send_signal(signal.SIGTERM)
    wait_for(lambda: refuses_connections(gateway.url), timeout=3)  # stops accepting at once
    rest, cut = read_events(response)
    cut_after = time.monotonic() - stopped_at
    conn.close()
    assert gateway.process.wait(timeout=20) is not None
    events = first + rest
    assert cut and b"[DONE]" not in events
    assert GRACE_SECONDS - 0.5 <= cut_after <= GRACE_SECONDS + 3, cut_after
    charge = RequestCharge.objects.get(request_id=request_id)
    assert charge.status == ChargeStatus.SETTLED and 0 < charge.quota <= charge.held_quota
    log = ConsumeLog.objects.get(request_id=request_id)
    assert log.content == "cut short by server shutdown"
    # Billed for the words the client received (the gateway may have sent a few more that the
    # closing connection never delivered), never for the 80 it did not send.
    assert delivered_words(events) <= log.completion_tokens < 80


def test_a_stream_ending_within_the_deadline_completes(tmp_path, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, scenario="words=8,slow=100")  # under a second
    _, raw = make_key(make_user())
    gateway = start_gateway(tmp_path, {"UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN": str(GRACE_SECONDS)})
    conn, response = open_stream(gateway.url, raw, unique_model)
    request_id = response.getheader("x-oneapi-request-id")
    first, _ = read_events(response, until=2)
    gateway.process.send_signal(signal.SIGTERM)
    rest, cut = read_events(response)
    conn.close()
    assert gateway.process.wait(timeout=20) is not None
    assert not cut and (first + rest)[-1] == b"[DONE]"
    log = wait_for(lambda: ConsumeLog.objects.filter(request_id=request_id).first())
    assert log.content == "" and log.completion_tokens > 0
    assert RequestCharge.objects.get(request_id=request_id).status == ChargeStatus.SETTLED
