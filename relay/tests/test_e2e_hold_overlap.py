"""A well-funded key's hold runs while its request goes upstream (relay.billing_flow, OVERLAP_FUNDING).

The funding is read from the key's cached entry, which can be stale. These tests make it stale on
purpose (the user's quota is taken away behind the gateway's back) to show what a refusal after
the upstream call was already made does: the caller gets the refusal and nothing is billed or
delivered, and the same key and user hold first afterwards on that worker.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from accounts.models import User
from billing.models import ChargeStatus, ConsumeLog, RequestCharge
from conftest import LiveGateway, start_gateway, stop_gateway

from .helpers import post

pytestmark = pytest.mark.django_db(transaction=True)
CACHE_POLL = 0.2  # start_gateway's CACHE_CHANGE_POLL_SECONDS


@pytest.fixture(scope="module")
def one_worker(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """One worker, so a second request sees what the first one taught it."""
    gateway = start_gateway(tmp_path_factory.mktemp("gateway-overlap"), {"WEB_CONCURRENCY": "1"})
    yield gateway
    stop_gateway(gateway)


@pytest.fixture(scope="module")
def hold_first(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    gateway = start_gateway(tmp_path_factory.mktemp("gateway-hold-first"), {"WEB_CONCURRENCY": "1", "RELAY_HOLD_OVERLAP": "false"})
    yield gateway
    stop_gateway(gateway)


def _ask(gateway: LiveGateway, raw: str, model: str) -> tuple[int, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}
    status, _, answer = post(gateway.url + "/v1/chat/completions", body, {"Authorization": f"Bearer {raw}"})
    return status, answer


def _upstream_calls(fake_provider: Any, model: str) -> int:
    return sum(1 for r in fake_provider.requests() if isinstance(r.get("body"), dict) and r["body"].get("model") == model)


def test_a_hold_refused_after_the_call_went_out_answers_the_refusal_and_bills_nothing(
    one_worker, fake_provider, make_user, make_key, make_channel, unique_model
) -> None:  # type: ignore[no-untyped-def]
    make_channel(unique_model)
    user = make_user(quota=10**12)
    (_, first), (_, second) = make_key(user), make_key(user)  # unlimited keys: the user's quota decides
    time.sleep(4 * CACHE_POLL)  # the gateway has seen these changes: what it caches next stays cached
    assert _ask(one_worker, first, unique_model)[0] == 200  # both entries cached: a user funded 10^12
    assert _ask(one_worker, second, unique_model)[0] == 200
    assert _upstream_calls(fake_provider, unique_model) == 2
    logs_before = ConsumeLog.objects.filter(user_id=user.pk).count()

    User.objects.filter(pk=user.pk).update(quota=0)  # behind the cache's back: no change signal

    status, answer = _ask(one_worker, first, unique_model)
    assert status == 403 and answer["error"]["code"] == "insufficient_user_quota", answer
    assert _upstream_calls(fake_provider, unique_model) == 3  # it went out while the hold was refused
    # The other key's cached entry still says "funded", but this worker now holds first for the
    # user: refused before any upstream call.
    status, answer = _ask(one_worker, second, unique_model)
    assert status == 403 and answer["error"]["code"] == "insufficient_user_quota", answer
    assert _upstream_calls(fake_provider, unique_model) == 3

    user.refresh_from_db()
    assert user.quota == 0  # nothing debited, nothing given back
    assert ConsumeLog.objects.filter(user_id=user.pk).count() == logs_before  # no answer, no log row
    assert not RequestCharge.objects.filter(user_id=user.pk, status=ChargeStatus.HELD).exists()
    assert RequestCharge.objects.filter(user_id=user.pk).count() == 2  # only the two granted requests


def test_a_refusal_is_the_answer_even_when_the_upstream_failed_meanwhile(
    one_worker, fake_provider, make_user, make_key, make_channel, unique_model
) -> None:  # type: ignore[no-untyped-def]
    working, failing = unique_model + "-ok", unique_model
    make_channel(working)
    make_channel(failing, scenario="500")
    user = make_user(quota=10**12)
    _, raw = make_key(user)
    time.sleep(4 * CACHE_POLL)
    assert _ask(one_worker, raw, working)[0] == 200  # caches the key: funded
    User.objects.filter(pk=user.pk).update(quota=0)
    status, answer = _ask(one_worker, raw, failing)  # the upstream fails while the hold is refused
    assert status == 403 and answer["error"]["code"] == "insufficient_user_quota", answer
    assert _upstream_calls(fake_provider, failing) == 1
    user.refresh_from_db()
    assert user.quota == 0
    assert not RequestCharge.objects.filter(user_id=user.pk, status=ChargeStatus.HELD).exists()
    assert RequestCharge.objects.filter(user_id=user.pk).count() == 1  # the first request's only


def test_a_key_funded_less_than_a_hundred_holds_holds_first(
    one_worker, fake_provider, make_user, make_key, make_channel, unique_model
) -> None:  # type: ignore[no-untyped-def]
    make_channel(unique_model)
    user = make_user(quota=10**12)
    _, raw = make_key(user, remain_quota=20_000)  # some 26 holds' worth (757 each): never overlapped
    assert _ask(one_worker, raw, unique_model)[0] == 200
    User.objects.filter(pk=user.pk).update(quota=0)
    status, answer = _ask(one_worker, raw, unique_model)
    assert status == 403 and answer["error"]["code"] == "insufficient_user_quota", answer
    assert _upstream_calls(fake_provider, unique_model) == 1


def test_with_overlap_off_every_hold_comes_first(hold_first, fake_provider, make_user, make_key, make_channel, unique_model) -> None:  # type: ignore[no-untyped-def]
    make_channel(unique_model)
    user = make_user(quota=10**12)
    _, raw = make_key(user)
    assert _ask(hold_first, raw, unique_model)[0] == 200
    User.objects.filter(pk=user.pk).update(quota=0)
    status, answer = _ask(hold_first, raw, unique_model)
    assert status == 403 and answer["error"]["code"] == "insufficient_user_quota", answer
    assert _upstream_calls(fake_provider, unique_model) == 1
