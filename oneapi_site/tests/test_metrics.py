"""/metrics: token rules, and correct sums with several uvicorn worker processes."""

from __future__ import annotations

import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from conftest import start_gateway, stop_gateway
from relay.tests.helpers import post

TOKEN = "metrics-secret-token"


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def scrape(url: str, token: str = TOKEN) -> str:
    request = urllib.request.Request(url + "/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.read().decode()


@pytest.mark.django_db
def test_metrics_need_a_configured_token(settings, make_channel):
    channel = make_channel("some-model")
    client = Client()
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 403
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    text = response.content.decode()
    assert ({"channel": str(channel.pk), "name": channel.name, "type": "1"}, 1.0) in samples(text, "oneapi_channel_status")
    assert ({"channel": str(channel.pk)}, 1.0) in samples(text, "oneapi_channel_enabled")
    assert client.get(f"/metrics?token={TOKEN}").status_code == 200
    settings.ENABLE_PROMETHEUS_METRICS = False
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_counts_add_up_over_two_worker_processes(tmp_path, make_user, make_key, make_channel, unique_model):
    channel = make_channel(unique_model)
    _, raw = make_key(make_user())
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    gateway = start_gateway(
        tmp_path,
        {"WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "METRICS_TOKEN": TOKEN},
    )
    try:
        url = gateway.url + "/v1/chat/completions"
        body = {"model": unique_model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}

        def one(_: int) -> int:
            return post(url, body, {"Authorization": f"Bearer {raw}"})[0]

        def writers() -> set[str]:
            return {path.stem.rsplit("_", 1)[-1] for path in Path(metrics_dir).glob("counter_*.db")}

        # The kernel decides which worker accepts each connection, and only among workers already
        # listening (on a busy machine the second may take seconds to start): send batches until
        # both have served some (bounded in time), so the test proves the sum over processes.
        sent = 0
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(8) as pool:
            while sent < 40 or (len(writers()) < 2 and time.monotonic() < deadline):
                assert list(pool.map(one, range(40))) == [200] * 40
                sent += 40
        text = scrape(gateway.url)
    finally:
        stop_gateway(gateway)
    labels = {"format": "chat", "model": unique_model, "channel": str(channel.pk), "status": "200"}
    assert samples(text, "oneapi_relay_requests_total") == [(labels, float(sent))]
    durations = samples(text, "oneapi_relay_request_duration_seconds_count")
    assert durations == [({k: v for k, v in labels.items() if k != "status"}, float(sent))]
    tokens = {s[0]["kind"]: s[1] for s in samples(text, "oneapi_relay_tokens_total") if s[0]["model"] == unique_model}
    assert tokens["prompt"] > 0 and tokens["completion"] > 0
    assert [value for lbl, value in samples(text, "oneapi_relay_cost_usd_total") if lbl["model"] == unique_model][0] > 0
    assert samples(text, "oneapi_relay_streams_in_flight") == [({}, 0.0)]
    # Both worker processes served (and wrote their own files), and the sums cover both.
    assert len(writers()) == 2
