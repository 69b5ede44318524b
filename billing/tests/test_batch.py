"""BATCH_UPDATE_ENABLED: settlements claim and log at once, counters follow at the flush."""

from __future__ import annotations

import time

import pytest

from billing import batch as batching
from billing.ledger import Hold, HoldOutcome, Ledger, Settlement
from billing.models import ChargeStatus, ConsumeLog, RequestCharge
from conftest import start_gateway, stop_gateway
from relay.tests.helpers import post, wait_for

from .test_ledger import run, state

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def batched(settings):  # type: ignore[no-untyped-def]
    settings.BATCH_UPDATE_ENABLED = True
    batching.batch = batching.CounterBatch()
    yield batching.batch
    batching.batch = batching.CounterBatch()


def test_counters_wait_for_the_flush_and_add_up_exactly(batched, make_user, make_key):
    user = make_user(quota=10_000)
    key, _ = make_key(user, remain_quota=5_000)

    async def body(ledger: Ledger) -> list[object]:
        out: list[object] = []
        for i, final in enumerate((300, 450)):
            out.append(await ledger.hold(Hold(f"b-{i}", user.pk, key.pk, 1_000)))
            out.append(await ledger.settle(Settlement(f"b-{i}", user.pk, key.pk, None, final, model_name="m")))
        out.append(await ledger.settle(Settlement("b-0", user.pk, key.pk, None, 300, model_name="m")))  # a repeat
        return out

    assert run(body) == [HoldOutcome.OK, True, HoldOutcome.OK, True, False]
    # Holds are never batched: both are in the database already; the settlements' counters are not.
    assert state(user, key) == (10_000 - 2_000, 0, 0, 5_000 - 2_000, 0)
    assert RequestCharge.objects.filter(status=ChargeStatus.SETTLED).count() == 2 and ConsumeLog.objects.count() == 2
    assert batched.pending()

    async def flush(ledger: Ledger) -> None:
        await batched.flush(ledger.db)

    run(flush)
    assert state(user, key) == (10_000 - 750, 750, 2, 5_000 - 750, 750)
    assert not batched.pending()


def test_refunds_are_batched_too(batched, make_user, make_key):
    user = make_user(quota=10_000)
    key, _ = make_key(user, remain_quota=5_000)

    async def body(ledger: Ledger) -> None:
        await ledger.hold(Hold("r-0", user.pk, key.pk, 800))
        await ledger.settle(Settlement("r-0", user.pk, key.pk, None, 0, refund=True, model_name="m"))
        await batched.flush(ledger.db)

    run(body)
    assert state(user, key) == (10_000, 0, 0, 5_000, 0)


def test_a_gateway_with_batching_flushes_on_its_interval_and_at_shutdown(tmp_path, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model)
    user = make_user(quota=1_000_000)
    key, raw = make_key(user, remain_quota=1_000_000)
    body = {"model": unique_model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}

    def spent() -> int:
        return sum(log.quota for log in ConsumeLog.objects.filter(api_key_id=key.pk))

    def counters() -> tuple[int, int, int]:
        user.refresh_from_db()
        key.refresh_from_db()
        return user.used_quota, key.used_quota, user.request_count

    gateway = start_gateway(tmp_path, {"BATCH_UPDATE_ENABLED": "true", "BATCH_UPDATE_INTERVAL": "1"})
    try:
        for _ in range(5):
            assert post(gateway.url + "/v1/chat/completions", body, {"Authorization": f"Bearer {raw}"})[0] == 200
        wait_for(lambda: counters() == (spent(), spent(), 5), timeout=10)
    finally:
        stop_gateway(gateway)

    slow = start_gateway(tmp_path, {"BATCH_UPDATE_ENABLED": "true", "BATCH_UPDATE_INTERVAL": "3600"})
    try:
        for _ in range(3):
            assert post(slow.url + "/v1/chat/completions", body, {"Authorization": f"Bearer {raw}"})[0] == 200
        time.sleep(0.3)
        assert counters()[2] == 5, "not flushed before the interval"
    finally:
        stop_gateway(slow)  # SIGTERM: the shutdown flush writes the rest
    assert counters() == (spent(), spent(), 8)
    key.refresh_from_db()
    assert key.remain_quota == 1_000_000 - spent()
