"""Azure OpenAI channels through the live gateway against the fake's Azure mode (which, like
Azure, opens every stream with a content-filter chunk that has no choices)."""

from __future__ import annotations

import anthropic
import pytest

from billing.models import ConsumeLog
from relay.tests.helpers import client

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = "Say hello in one sentence."


@pytest.fixture
def raw_key(make_user, make_key):  # type: ignore[no-untyped-def]
    return make_key(make_user(quota=100_000_000))[1]


@pytest.fixture
def azure_channel(make_channel, unique_model):  # type: ignore[no-untyped-def]
    return make_channel(unique_model, type=3, key="azure-secret", config={"api_version": "2025-01-01-preview"})


def last_upstream(fake_provider) -> dict:  # type: ignore[no-untyped-def]
    return [r for r in fake_provider.requests() if r["path"].startswith("/openai/")][-1]


@pytest.mark.parametrize("stream", [False, True])
def test_chat_caller_passes_through(live_gateway, fake_provider, azure_channel, raw_key, unique_model, stream):
    api = client(live_gateway.url, raw_key).chat.completions
    messages = [{"role": "user", "content": HELLO}]
    if stream:
        chunks = list(api.create(model=unique_model, messages=messages, stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    else:
        text = api.create(model=unique_model, messages=messages).choices[0].message.content
    assert text == "Fake reply to: " + HELLO
    recorded = last_upstream(fake_provider)
    assert recorded["path"] == f"/openai/deployments/{unique_model}/chat/completions"
    assert recorded["query"] == "api-version=2025-01-01-preview"
    assert recorded["headers"]["api-key"] == "azure-secret" and "authorization" not in recorded["headers"]
    log = ConsumeLog.objects.get(model_name=unique_model)
    assert log.quota > 0 and log.prompt_tokens > 0 and log.completion_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_messages_caller_is_converted_to_chat(live_gateway, fake_provider, azure_channel, raw_key, unique_model, stream):
    api = anthropic.Anthropic(base_url=live_gateway.url, api_key=raw_key, max_retries=0, timeout=20).messages
    kwargs = {"model": unique_model, "max_tokens": 256, "messages": [{"role": "user", "content": HELLO}]}
    if stream:
        with api.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = api.create(**kwargs)
    assert message.content[0].text == "Fake reply to: " + HELLO and message.usage.output_tokens > 0
    assert last_upstream(fake_provider)["path"] == f"/openai/deployments/{unique_model}/chat/completions"


def test_embeddings(live_gateway, fake_provider, make_channel, raw_key, unique_model):
    make_channel(unique_model, type=3, key="azure-secret")
    result = client(live_gateway.url, raw_key).embeddings.create(model=unique_model, input=["a", "b"], dimensions=16)
    assert [len(d.embedding) for d in result.data] == [16, 16]
    assert last_upstream(fake_provider)["path"] == f"/openai/deployments/{unique_model}/embeddings"


@pytest.mark.parametrize("stream", [False, True])
def test_responses_caller_passes_through_to_the_v1_api(live_gateway, fake_provider, azure_channel, raw_key, unique_model, stream):
    api = client(live_gateway.url, raw_key).responses
    if stream:
        with api.stream(model=unique_model, input=HELLO) as events:
            response = events.get_final_response()
    else:
        response = api.create(model=unique_model, input=HELLO)
    assert response.output_text == "Fake reply to: " + HELLO and response.usage.output_tokens > 0
    recorded = last_upstream(fake_provider)
    assert recorded["path"] == "/openai/v1/responses" and recorded["body"]["model"] == unique_model
    assert recorded["headers"]["api-key"] == "azure-secret"
