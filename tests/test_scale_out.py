"""Scale-out: two gateway server processes sharing the database and Redis, traffic sent to both.

- the per-key rate limit holds across them (counted once, in Redis);
- concurrent holds on one key never overspend it;
- a 429 suspension seen by one is honoured by the other (abilities.suspend_until + the config
  generation every worker polls);
- metrics from both are scrapeable, each counting what it served.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import User
from billing.models import ChargeStatus, RequestCharge
from conftest import LiveGateway, start_gateway, stop_gateway
from oneapi_site.tests.test_metrics import TOKEN, scrape
from relay.tests.helpers import get, post

SETTLE = 1.0  # seconds: more than CACHE_CHANGE_POLL_SECONDS (0.2) plus a reload

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_CONN_STRING"),
        reason="scale-out needs Redis shared by the replicas: set REDIS_CONN_STRING (the CI's PostgreSQL + Redis run does)",
    ),
]

KEY_LIMIT = 6
QUOTA = 12_000


@pytest.fixture(scope="module")
def replicas(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[tuple[LiveGateway, LiveGateway]]:  # type: ignore[no-untyped-def]
    shared = {
        "RATE_LIMIT_DISABLED": "false",
        "GLOBAL_RELAY_RATE_LIMIT": str(KEY_LIMIT),
        "RATE_LIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}:",
        "METRICS_TOKEN": TOKEN,
    }
    first = start_gateway(Path(tmp_path_factory.mktemp("replica-a")), shared)
    second = start_gateway(Path(tmp_path_factory.mktemp("replica-b")), shared)
    yield first, second
    stop_gateway(first)
    stop_gateway(second)


def chat(model: str, max_tokens: int = 5) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens}


def test_the_per_key_rate_limit_holds_across_replicas(replicas, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model)
    _, raw = make_key(make_user())
    statuses = [
        post(replicas[i % 2].url + "/v1/chat/completions", chat(unique_model), {"Authorization": f"Bearer {raw}"})[0]
        for i in range(KEY_LIMIT + 4)
    ]
    assert statuses == [200] * KEY_LIMIT + [429] * 4


def test_concurrent_holds_never_overspend_a_key(replicas, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, scenario="ttfb=300")  # slow enough that every hold overlaps
    user = make_user(quota=10**9)
    # Room for about two holds of this request (its estimate covers 1000 output tokens).
    key, raw = make_key(user, remain_quota=QUOTA, unlimited_quota=False)

    def one(i: int) -> int:
        url = replicas[i % 2].url + "/v1/chat/completions"
        return post(url, chat(unique_model, max_tokens=1000), {"Authorization": f"Bearer {raw}"})[0]

    with ThreadPoolExecutor(KEY_LIMIT) as pool:
        statuses = list(pool.map(one, range(KEY_LIMIT)))
    key.refresh_from_db()
    charges = RequestCharge.objects.filter(api_key_id=key.pk)
    hold = charges.first().held_quota
    served = statuses.count(200)
    assert 1 <= served <= QUOTA // hold and statuses.count(403) == KEY_LIMIT - served, statuses
    settled = sum(charges.filter(status=ChargeStatus.SETTLED).values_list("quota", flat=True))
    assert key.remain_quota >= 0
    assert key.remain_quota + settled == QUOTA  # what was spent is exactly what left the key
    assert not charges.filter(status=ChargeStatus.HELD).exists()
    assert key.used_quota == settled
    assert User.objects.get(pk=user.pk).quota == 10**9 - settled


def test_a_429_suspension_seen_by_one_replica_is_honoured_by_the_other(
    replicas, fake_provider, make_user, make_key, make_channel, unique_model
):
    make_channel(unique_model, scenario="429", priority=10)
    make_channel(unique_model, priority=0)
    time.sleep(SETTLE)  # the gateway picks up both channels within its poll interval
    _, raw = make_key(make_user())
    first, second = replicas
    auth = {"Authorization": f"Bearer {raw}"}
    get(fake_provider.base_url + "/_requests")  # the fake is up
    assert post(first.url + "/v1/chat/completions", chat(unique_model), auth)[0] == 200  # 429, then the other channel

    def rate_limited_calls() -> int:
        _, _, records = get(fake_provider.base_url + "/_requests")
        return sum(
            1
            for r in records
            if r["path"].startswith("/s/429/") and isinstance(r["body"], dict) and r["body"].get("model") == unique_model
        )

    assert rate_limited_calls() == 1
    time.sleep(1.0)  # the other replica learns of it within its poll interval (0.2 s here)
    for _ in range(4):
        assert post(second.url + "/v1/chat/completions", chat(unique_model), auth)[0] == 200
    assert rate_limited_calls() == 1


def test_metrics_from_both_replicas_are_scrapeable(replicas, make_user, make_key, make_channel, unique_model):
    channel = make_channel(unique_model)
    sent = {0: 3, 1: 2}
    for index, count in sent.items():
        _, raw = make_key(make_user())
        for _ in range(count):
            assert post(replicas[index].url + "/v1/chat/completions", chat(unique_model), {"Authorization": f"Bearer {raw}"})[0] == 200
    for index, count in sent.items():
        text = scrape(replicas[index].url)
        served = [
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "oneapi_relay_requests_total" and sample.labels.get("model") == unique_model
        ]
        assert served == [float(count)]
        assert f'oneapi_channel_enabled{{channel="{channel.pk}"}} 1.0' in text
