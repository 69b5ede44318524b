"""Billing through the live gateway: cached tokens, retries with one charge, refunds, cut streams."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest

from billing.models import ChargeStatus, ConsumeLog, LogType, RequestCharge
from channels_app.models import Ability
from fakeprovider.tokens import count_chat_prompt_tokens

from .helpers import client, expected_quota, set_price, wait_for, wait_for_gateway_cache

pytestmark = pytest.mark.django_db(transaction=True)
HELLO = [{"role": "user", "content": "Say hello in one sentence."}]


def quotas(user, key):  # type: ignore[no-untyped-def]
    user.refresh_from_db()
    key.refresh_from_db()
    return user.quota, user.used_quota, key.remain_quota, key.used_quota


def test_cached_tokens_are_billed_at_the_cached_price(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, scenario="cached=4")
    set_price(unique_model, "3", "15", cached_usd="0.3")
    user = make_user(quota=1_000_000)
    key, raw = make_key(user, remain_quota=1_000_000)
    reply = client(live_gateway.url, raw).chat.completions.create(model=unique_model, messages=HELLO)
    usage = reply.usage
    assert usage.prompt_tokens_details.cached_tokens == 4
    cost = expected_quota(
        prompt=usage.prompt_tokens, completion=usage.completion_tokens, cached=4, input_usd="3", output_usd="15", cached_usd="0.3"
    )
    log = ConsumeLog.objects.get(model_name=unique_model)
    assert (log.cached_tokens, log.quota) == (4, cost)
    assert quotas(user, key) == (1_000_000 - cost, cost, 1_000_000 - cost, cost)


def test_group_ratio_multiplies_the_price(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, groups="default,vip")
    set_price(unique_model, "1", "2")
    user = make_user(group="vip", ratio="1.5")
    _, raw = make_key(user)
    reply = client(live_gateway.url, raw).chat.completions.create(model=unique_model, messages=HELLO)
    cost = expected_quota(prompt=reply.usage.prompt_tokens, completion=reply.usage.completion_tokens, input_usd="1", output_usd="2", ratio="1.5")
    assert ConsumeLog.objects.get(model_name=unique_model).quota == cost


@pytest.mark.parametrize("failure", ["500", "429", "timeout=5"])
def test_retry_on_another_channel_charges_once(live_gateway, fake_provider, make_user, make_key, make_channel, unique_model, failure):
    bad = make_channel(unique_model, scenario=failure, priority=10)
    good = make_channel(unique_model, priority=0)
    user = make_user(quota=1_000_000)
    key, raw = make_key(user, remain_quota=1_000_000)
    wait_for_gateway_cache()  # both channels, not only the failing one
    raw_response = client(live_gateway.url, raw).chat.completions.with_raw_response.create(model=unique_model, messages=HELLO)
    reply = raw_response.parse()
    request_id = raw_response.headers["x-oneapi-request-id"]
    assert reply.choices[0].message.content.startswith("Fake reply")
    logs = ConsumeLog.objects.filter(request_id=request_id)
    assert [(log.type, log.channel_id) for log in logs] == [(LogType.CONSUME, good.pk)]
    charge = RequestCharge.objects.get(request_id=request_id)
    assert charge.status == ChargeStatus.SETTLED and charge.quota == logs[0].quota
    quota, used, remain, key_used = quotas(user, key)
    assert (quota, used, remain, key_used) == (1_000_000 - charge.quota, charge.quota, 1_000_000 - charge.quota, charge.quota)
    if failure == "429":
        suspended = Ability.objects.get(channel=bad, model=unique_model).suspend_until
        assert suspended is not None and suspended.timestamp() > time.time() + 30
        fake_provider.clear()
        client(live_gateway.url, raw).chat.completions.create(model=unique_model, messages=HELLO)
        paths = [r["path"] for r in fake_provider.requests() if r["path"].endswith("/chat/completions")]
        assert paths == ["/v1/chat/completions"], "the suspended channel must be skipped"


def test_upstream_failure_refunds_the_hold_and_logs_the_error(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, scenario="500")
    user = make_user(quota=1_000_000)
    key, raw = make_key(user, remain_quota=1_000_000)
    with pytest.raises(openai.APIStatusError) as caught:
        client(live_gateway.url, raw).chat.completions.create(model=unique_model, messages=HELLO)
    assert caught.value.status_code == 502
    assert caught.value.body["message"].startswith("fake internal error")
    assert quotas(user, key) == (1_000_000, 0, 1_000_000, 0)
    log = ConsumeLog.objects.get(model_name=unique_model)
    assert (log.type, log.quota, log.status_code) == (LogType.ERROR, 0, 502)
    assert RequestCharge.objects.get(request_id=log.request_id).status == ChargeStatus.REFUNDED


def test_upstream_400_is_not_retried(live_gateway, fake_provider, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, priority=10)
    make_channel(unique_model, priority=0)
    _, raw = make_key(make_user())
    fake_provider.clear()
    with pytest.raises(openai.BadRequestError):
        client(live_gateway.url, raw).chat.completions.create(model=unique_model, messages=HELLO, n=99)
    assert len([r for r in fake_provider.requests() if r["path"].endswith("/chat/completions")]) == 1


def test_client_disconnect_mid_stream_bills_what_was_delivered(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, scenario="words=300,slow=20")
    set_price(unique_model, "2", "8")
    user = make_user(quota=1_000_000)
    key, raw = make_key(user, remain_quota=1_000_000)
    stream = client(live_gateway.url, raw).chat.completions.create(model=unique_model, messages=HELLO, stream=True)
    received = 0
    for _chunk in stream:
        received += 1
        if received == 6:
            break
    stream.close()
    charge = wait_for(lambda: RequestCharge.objects.filter(status=ChargeStatus.SETTLED, user_id=user.pk).first())
    log = ConsumeLog.objects.get(request_id=charge.request_id)
    assert log.is_stream and log.content == "client disconnected"
    assert 5 <= log.completion_tokens < 100, "billed for what was delivered, not the whole answer"
    assert log.prompt_tokens == count_chat_prompt_tokens(HELLO)
    assert log.quota == expected_quota(prompt=log.prompt_tokens, completion=log.completion_tokens, input_usd="2", output_usd="8")
    assert quotas(user, key) == (1_000_000 - log.quota, log.quota, 1_000_000 - log.quota, log.quota)


def test_stream_cut_by_upstream_ends_with_an_error_event_and_bills_delivered(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, scenario="words=40,cut")
    user = make_user(quota=1_000_000)
    _, raw = make_key(user)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client(live_gateway.url, raw).chat.completions.create(model=unique_model, messages=HELLO, stream=True):
            received.append(chunk)
    assert "before the answer was complete" in str(caught.value)
    assert received, "the delivered part reached the client first"
    log = ConsumeLog.objects.get(model_name=unique_model)
    assert log.type == LogType.CONSUME and 0 < log.completion_tokens < 40 and log.quota > 0


def test_garbage_event_from_upstream_is_dropped(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, scenario="garbage,words=10")
    _, raw = make_key(make_user())
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client(live_gateway.url, raw).chat.completions.create(model=unique_model, messages=HELLO, stream=True)
        if c.choices
    )
    assert len(text.split()) == 10


def test_concurrent_requests_never_overspend_a_key(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, scenario="ttfb=300")
    set_price(unique_model, "10", "10")
    user = make_user(quota=100_000_000)
    # One request holds about ceil((len(body)/4 + 1 + 500 + 50) * 10 / 2) ~ 2,900 quota: this
    # key affords about 10 at once.
    key, raw = make_key(user, remain_quota=29_000)
    api = openai.AsyncOpenAI(base_url=live_gateway.url + "/v1", api_key=raw, max_retries=0, timeout=30)

    async def one() -> str:
        try:
            await api.chat.completions.create(model=unique_model, messages=HELLO, max_tokens=50)
            return "ok"
        except openai.PermissionDeniedError as err:
            assert err.body["code"] == "insufficient_quota"
            return "refused"

    async def many() -> list[str]:
        return await asyncio.gather(*(one() for _ in range(50)))

    results = asyncio.run(many())
    assert 1 <= results.count("ok") <= 12 and results.count("refused") >= 30
    key.refresh_from_db()
    spent = sum(log.quota for log in ConsumeLog.objects.filter(api_key_id=key.pk))
    assert key.remain_quota >= 0
    assert key.used_quota == spent == 29_000 - key.remain_quota
    assert not RequestCharge.objects.filter(api_key_id=key.pk, status=ChargeStatus.HELD).exists()


def test_long_stream_is_billed_as_it_goes_and_cut_when_quota_runs_out(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, scenario="words=6000")
    set_price(unique_model, "1", "1")
    user = make_user(quota=100_000_000)
    # The first hold covers ~2,048 output tokens (DEFAULT_MAX_TOKEN) for about 1,300 quota; the
    # key cannot afford the second one (another 1,024), so the answer stops near 1,850 tokens.
    key, raw = make_key(user, remain_quota=2_000)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client(live_gateway.url, raw).chat.completions.create(model=unique_model, messages=HELLO, stream=True):
            received.append(chunk)
    assert "quota ran out during the answer" in str(caught.value)
    log = ConsumeLog.objects.get(model_name=unique_model)
    assert 1_500 < log.completion_tokens < 2_100
    assert log.quota == expected_quota(prompt=log.prompt_tokens, completion=log.completion_tokens, input_usd="1", output_usd="1")
    key.refresh_from_db()
    assert key.remain_quota == 2_000 - log.quota >= 0


def test_long_stream_extends_its_hold_when_quota_allows(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, scenario="words=5000")
    set_price(unique_model, "1", "1")
    user = make_user(quota=100_000_000)
    key, raw = make_key(user, remain_quota=100_000)
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client(live_gateway.url, raw).chat.completions.create(model=unique_model, messages=HELLO, stream=True)
        if c.choices
    )
    assert len(text.split()) == 5000
    charge = RequestCharge.objects.get(api_key_id=key.pk)
    assert charge.held_quota > 2 * 1_024  # extended at least twice past the first estimate
    key.refresh_from_db()
    assert key.remain_quota == 100_000 - charge.quota
