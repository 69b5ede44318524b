"""The official openai SDK against a live gateway whose channels point at the fake provider."""

from __future__ import annotations

import base64
import json
import struct

import pytest

from accounts.models import ApiKey, User
from billing.models import ConsumeLog, RequestCharge
from fakeprovider.tokens import count_tokens

from .helpers import client, expected_quota, get, post, set_price

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMA = {
    "type": "object",
    "properties": {"topic": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["topic", "confidence"],
    "additionalProperties": False,
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


def test_chat_non_stream_is_billed_exactly_and_logged(live_gateway, fake_provider, make_user, make_key, make_channel, unique_model):
    channel = make_channel(unique_model)
    set_price(unique_model, "1.5", "6")
    user = make_user(quota=1_000_000)
    key, raw = make_key(user, remain_quota=500_000)

    raw_response = client(live_gateway.url, raw).chat.completions.with_raw_response.create(
        model=unique_model, messages=[{"role": "user", "content": "Say hello in one sentence."}]
    )
    completion = raw_response.parse()
    request_id = raw_response.headers["x-oneapi-request-id"]

    assert completion.choices[0].message.content == "Fake reply to: Say hello in one sentence."
    usage = completion.usage
    cost = expected_quota(prompt=usage.prompt_tokens, completion=usage.completion_tokens, input_usd="1.5", output_usd="6")
    log = ConsumeLog.objects.get(request_id=request_id)
    assert (log.quota, log.prompt_tokens, log.completion_tokens, log.is_stream) == (cost, usage.prompt_tokens, usage.completion_tokens, False)
    assert (log.model_name, log.upstream_model, log.channel_id, log.token_name) == (unique_model, unique_model, channel.pk, "test key")
    assert log.elapsed_ms >= 0
    user.refresh_from_db()
    key.refresh_from_db()
    assert user.quota == 1_000_000 - cost and user.used_quota == cost and user.request_count == 1
    assert key.remain_quota == 500_000 - cost and key.used_quota == cost
    assert RequestCharge.objects.get(request_id=request_id).quota == cost

    cost_url = f"{live_gateway.url}/api/cost/request/{request_id}"
    status, headers, body = get(cost_url, {"Authorization": f"Bearer {raw}"})
    assert status == 200 and headers["x-oneapi-request-id"]
    assert (body["request_id"], body["quota"], body["user_id"]) == (request_id, cost, user.pk)
    assert body["cost_usd"] == pytest.approx(cost / 500_000)
    _, stranger = make_key(make_user())
    assert get(cost_url, {"Authorization": f"Bearer {stranger}"})[0] == 404
    assert get(cost_url)[0] == 401


def test_chat_stream_relays_chunks_and_hides_enforced_usage(live_gateway, fake_provider, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, scenario="words=30")
    user = make_user()
    _, raw = make_key(user)
    fake_provider.clear()

    chunks = list(
        client(live_gateway.url, raw).chat.completions.create(
            model=unique_model, messages=[{"role": "user", "content": "count to thirty"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 30
    assert all(c.usage is None for c in chunks), "the client did not ask for usage"
    forwarded = [r for r in fake_provider.requests() if r["body"] and r["body"].get("model") == unique_model]
    assert forwarded[-1]["body"]["stream_options"] == {"include_usage": True}
    log = ConsumeLog.objects.get(model_name=unique_model)
    assert log.is_stream
    assert log.completion_tokens == count_tokens(text)  # the upstream's usage, read as the stream passed
    assert log.quota == expected_quota(prompt=log.prompt_tokens, completion=log.completion_tokens, input_usd="2.5", output_usd="10")


def test_chat_stream_with_usage_requested(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model)
    _, raw = make_key(make_user())
    chunks = list(
        client(live_gateway.url, raw).chat.completions.create(
            model=unique_model,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert ConsumeLog.objects.get(model_name=unique_model).completion_tokens == chunks[-1].usage.completion_tokens


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls(live_gateway, make_user, make_key, make_channel, unique_model, stream):
    make_channel(unique_model)
    _, raw = make_key(make_user())
    kwargs = {"model": unique_model, "messages": [{"role": "user", "content": "weather in Paris?"}], "tools": [WEATHER_TOOL]}
    api = client(live_gateway.url, raw).chat.completions
    if stream:
        arguments, name = "", None
        for chunk in api.create(stream=True, **kwargs):
            for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                name = name or call.function.name
                arguments += call.function.arguments or ""
    else:
        call = api.create(**kwargs).choices[0].message.tool_calls[0]
        name, arguments = call.function.name, call.function.arguments
    assert name == "get_weather"
    assert "location" in json.loads(arguments)


@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_response_format(live_gateway, make_user, make_key, make_channel, unique_model, stream):
    make_channel(unique_model)
    _, raw = make_key(make_user())
    kwargs = {
        "model": unique_model,
        "messages": [{"role": "user", "content": "classify: the sky is blue"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "topic_classification", "schema": SCHEMA, "strict": True}},
    }
    api = client(live_gateway.url, raw).chat.completions
    if stream:
        content = "".join(c.choices[0].delta.content or "" for c in api.create(stream=True, **kwargs) if c.choices)
    else:
        content = api.create(**kwargs).choices[0].message.content
    data = json.loads(content)
    assert isinstance(data["topic"], str) and isinstance(data["confidence"], float)


def test_vision_image_url_passes_through(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model)
    _, raw = make_key(make_user())
    tiny_png = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
    reply = client(live_gateway.url, raw).chat.completions.create(
        model=unique_model,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": tiny_png, "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ],
    )
    assert "(saw 2 image(s))" in reply.choices[0].message.content
    assert reply.usage.prompt_tokens >= 170


def test_embeddings_float_and_base64(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model)
    set_price(unique_model, "0.02", "0")
    user = make_user(quota=1_000_000)
    _, raw = make_key(user)
    api = client(live_gateway.url, raw).embeddings
    as_base64 = api.create(model=unique_model, input=["first text", "second text here"])  # the SDK asks for base64
    assert [len(d.embedding) for d in as_base64.data] == [1536, 1536]
    as_float = api.create(model=unique_model, input="first text", encoding_format="float", dimensions=64)
    assert len(as_float.data[0].embedding) == 64
    assert as_base64.data[0].embedding[:64] != as_float.data[0].embedding  # different dimensions, different vectors
    assert abs(sum(x * x for x in as_base64.data[0].embedding) - 1) < 1e-3
    logs = ConsumeLog.objects.filter(model_name=unique_model)
    assert logs.count() == 2
    user.refresh_from_db()
    assert user.used_quota == sum(log.quota for log in logs)
    assert struct.calcsize("f") == 4


def test_model_mapping_sends_the_upstream_name(live_gateway, fake_provider, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model, model_mapping={unique_model: "upstream-" + unique_model})
    _, raw = make_key(make_user())
    reply = client(live_gateway.url, raw).chat.completions.create(model=unique_model, messages=[{"role": "user", "content": "hi"}])
    assert reply.model == "upstream-" + unique_model
    log = ConsumeLog.objects.get(model_name=unique_model)
    assert log.upstream_model == "upstream-" + unique_model


def test_admin_key_can_pin_a_channel_and_users_cannot(live_gateway, make_user, make_key, make_channel, unique_model):
    first = make_channel(unique_model, priority=10)
    second = make_channel(unique_model, priority=0)
    admin = make_user(role=10)
    _, admin_raw = make_key(admin)
    client(live_gateway.url, f"{admin_raw}-{second.pk}").chat.completions.create(
        model=unique_model, messages=[{"role": "user", "content": "hi"}]
    )
    assert ConsumeLog.objects.get(user_id=admin.pk).channel_id == second.pk != first.pk
    _, user_raw = make_key(make_user())
    with pytest.raises(Exception) as caught:
        client(live_gateway.url, f"{user_raw}-{second.pk}").chat.completions.create(
            model=unique_model, messages=[{"role": "user", "content": "hi"}]
        )
    assert getattr(caught.value, "status_code", None) == 403


def test_x_api_key_and_api_key_headers_are_accepted(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model)
    _, raw = make_key(make_user())
    body = {"model": unique_model, "messages": [{"role": "user", "content": "hi"}]}
    for header in ("x-api-key", "api-key"):
        status, headers, reply = post(live_gateway.url + "/v1/chat/completions", body, {header: raw})
        assert status == 200, reply
        assert headers["x-oneapi-request-id"]


def test_disabled_key_stops_at_once(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model)
    key, raw = make_key(make_user())
    api = client(live_gateway.url, raw).chat.completions
    api.create(model=unique_model, messages=[{"role": "user", "content": "hi"}])
    ApiKey.objects.filter(pk=key.pk).update(status=2)  # raw update: no signal, the hold must catch it
    with pytest.raises(Exception) as caught:
        api.create(model=unique_model, messages=[{"role": "user", "content": "hi"}])
    assert getattr(caught.value, "status_code", None) == 401
    assert "disabled" in str(caught.value)
    assert ApiKey.objects.get(pk=key.pk).used_quota > 0


def test_deleted_key_and_disabled_user_stop_at_once(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model)
    user = make_user()
    key, raw = make_key(user)
    other_key, other_raw = make_key(user)
    hi = [{"role": "user", "content": "hi"}]
    client(live_gateway.url, raw).chat.completions.create(model=unique_model, messages=hi)
    client(live_gateway.url, other_raw).chat.completions.create(model=unique_model, messages=hi)
    ApiKey.objects.filter(pk=key.pk).delete()
    with pytest.raises(Exception) as caught:
        client(live_gateway.url, raw).chat.completions.create(model=unique_model, messages=hi)
    assert getattr(caught.value, "status_code", None) == 401
    User.objects.filter(pk=user.pk).update(status=2)
    with pytest.raises(Exception) as caught:
        client(live_gateway.url, other_raw).chat.completions.create(model=unique_model, messages=hi)
    assert getattr(caught.value, "status_code", None) == 403 and "disabled" in str(caught.value)


def test_models_list_through_the_sdk(live_gateway, make_user, make_key, make_channel, unique_model):
    make_channel(unique_model + "-a," + unique_model + "-b")
    _, raw = make_key(make_user(), allowed_models=unique_model + "-a")
    api = client(live_gateway.url, raw).models
    assert [m.id for m in api.list()] == [unique_model + "-a"]
    assert api.retrieve(unique_model + "-a").id == unique_model + "-a"


def test_a_worker_freezes_what_it_loaded_at_startup_out_of_the_garbage_collector(live_gateway):
    """Full collections walking Django's ~175,000 startup objects paused a worker 100-140 ms
    (relay.app.freeze_startup_heap); each worker freezes them once it is started."""
    import re

    from .helpers import wait_for

    line = wait_for(lambda: re.search(r"relay worker ready: (\d+) objects loaded at startup frozen", live_gateway.log_path.read_text()))
    assert int(line.group(1)) > 50_000
