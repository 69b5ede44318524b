"""Azure OpenAI adaptor: URLs, headers and formats, then the adaptor against the fake's Azure mode."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from channels_app.types import type_info
from fakeprovider.process import FakeProvider
from relay import ir
from relay.adaptors import get_adaptor
from relay.adaptors.azure.adaptor import DEFAULT_API_VERSION, REASONING_API_VERSION, AzureAdaptor
from relay.snapshot import ChannelEntry

ADAPTOR = AzureAdaptor()
BASE = "https://res.openai.azure.com"


def entry(base_url: str = BASE, key: str = "azure-key", **config: Any) -> ChannelEntry:
    return ChannelEntry(id=3, name="azure", type=3, protocol="azure", base_url=base_url, key=key,
                        model_mapping={}, config=config, priority=0, weight=1, enabled=True)


def url(channel: ChannelEntry, model: str = "gpt-4o", endpoint: str = "chat", wire: str = "chat", stream: bool = False) -> str:
    return ADAPTOR.build_url(channel, endpoint, model=model, stream=stream, wire=wire)


# ------------------------------------------------------------------------------------ registry


def test_type_3_is_served_by_the_azure_adaptor():
    assert type_info(3).protocol == "azure"
    assert isinstance(get_adaptor("azure"), AzureAdaptor)


# ------------------------------------------------------------------------------------ URLs


def test_chat_goes_to_the_deployment_with_the_default_api_version():
    assert url(entry()) == f"{BASE}/openai/deployments/gpt-4o/chat/completions?api-version={DEFAULT_API_VERSION}"
    assert url(entry(), stream=True) == url(entry())  # streaming is the body's `stream`, not the URL


def test_deployment_keeps_dots_unless_the_channel_asks_otherwise():
    assert "/deployments/gpt-4.1-mini/" in url(entry(), "gpt-4.1-mini")
    assert "/deployments/gpt-35-turbo/" in url(entry(strip_dots=True), "gpt-3.5-turbo")  # the original one-api's habit
    mapped = entry(deployment_map={"gpt-4o": "prod-4o"}, strip_dots=True)
    assert "/deployments/prod-4o/" in url(mapped, "gpt-4o")
    assert "/deployments/gpt-41/" in url(mapped, "gpt-4.1")  # not in the map: strip_dots applies


def test_configured_api_version_and_trailing_slash_or_api_prefix_in_base():
    assert url(entry(BASE + "/", api_version="2025-01-01-preview")).endswith("?api-version=2025-01-01-preview")
    for pasted in (BASE + "/openai", BASE + "/openai/v1", BASE + "/openai/v1/"):
        assert url(entry(pasted)).startswith(f"{BASE}/openai/deployments/")


def test_reasoning_models_get_a_version_that_serves_them():
    for model in ("o1", "o3-mini", "o4-mini", "gpt-5-mini", "codex-mini"):
        assert url(entry(), model).endswith(f"?api-version={REASONING_API_VERSION}")
    assert url(entry(api_version="2024-10-21"), "o3-mini").endswith(REASONING_API_VERSION)
    # A newer version is kept; "gpt-4o" is no reasoning model.
    assert url(entry(api_version="2025-08-01-preview"), "o3").endswith("?api-version=2025-08-01-preview")
    assert url(entry(), "gpt-4o").endswith(DEFAULT_API_VERSION)


def test_v1_api_version_uses_the_v1_surface_without_api_version():
    assert url(entry(api_version="v1")) == f"{BASE}/openai/v1/chat/completions"
    assert url(entry(api_version="v1"), endpoint="embeddings", wire="embeddings") == f"{BASE}/openai/v1/embeddings"


def test_embeddings_url():
    assert url(entry(), "text-embedding-3-small", "embeddings", "embeddings") == (
        f"{BASE}/openai/deployments/text-embedding-3-small/embeddings?api-version={DEFAULT_API_VERSION}")


def test_responses_url_is_the_v1_api_or_the_configured_version():
    assert url(entry(), wire="responses") == f"{BASE}/openai/v1/responses"
    assert url(entry(responses_api_version="preview"), wire="responses") == f"{BASE}/openai/v1/responses?api-version=preview"
    assert url(entry(responses_api_version="2025-04-01-preview"), wire="responses") == (
        f"{BASE}/openai/responses?api-version=2025-04-01-preview")


def test_claude_deployments_speak_messages_at_the_anthropic_path():
    assert url(entry(), "claude-sonnet-4-5", wire="messages") == f"{BASE}/anthropic/v1/messages"
    with pytest.raises(ValueError):
        url(entry(), "claude-sonnet-4-5", endpoint="embeddings", wire="messages")


def test_deployment_names_are_escaped_in_the_path():
    assert "/deployments/my%20dep%2F1/" in url(entry(deployment_map={"m": "my dep/1"}), "m")


# ------------------------------------------------------------------------------------ headers, formats


def test_headers_carry_the_key_as_api_key_never_as_bearer():
    headers = ADAPTOR.build_headers(entry(), wire="chat")
    assert headers["api-key"] == "azure-key" and "Authorization" not in headers


def test_claude_headers_are_anthropics():
    headers = ADAPTOR.build_headers(entry(anthropic_beta="context-1m-2025-08-07"), wire="messages")
    assert headers["x-api-key"] == "azure-key" and headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "context-1m-2025-08-07" and "api-key" not in headers


def test_formats_chat_and_responses_pass_through_others_convert_to_chat():
    channel = entry()
    assert ADAPTOR.native_formats(channel) == {"chat", "responses"}
    assert ADAPTOR.upstream_format(channel, "chat") == "chat"
    assert ADAPTOR.upstream_format(channel, "responses") == "responses"
    assert ADAPTOR.upstream_format(channel, "messages") == "chat"
    assert ADAPTOR.upstream_format(entry(api_format="response"), "messages") == "responses"


def test_formats_for_claude_models_when_the_model_is_known():
    channel = entry()
    assert ADAPTOR.native_formats(channel, model="claude-opus-4-1") == {"messages"}
    for caller in ("chat", "responses", "messages"):
        assert ADAPTOR.upstream_format(channel, caller, model="claude-opus-4-1") == "messages"
    assert ADAPTOR.upstream_format(channel, "messages", model="gpt-4o") == "chat"


# ------------------------------------------------------------------------------------ against the fake


def _post(target: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(target, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_chat_through_the_fake_azure_mode(fake_provider: FakeProvider):
    channel = entry(fake_provider.base_url)
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello there Azure"}]}
    status, raw = _post(url(channel, "gpt-4o"), body, ADAPTOR.build_headers(channel, wire="chat"))
    assert status == 200, raw
    answer = json.loads(raw)
    assert answer["choices"][0]["message"]["content"] == "Fake reply to: Hello there Azure"
    assert answer["model"] == "gpt-4o"  # the deployment's name
    recorded = fake_provider.requests()[-1]
    assert recorded["headers"]["api-key"] == "azure-key" and "authorization" not in recorded["headers"]
    assert recorded["query"] == f"api-version={DEFAULT_API_VERSION}"


def test_converted_request_and_answer_through_the_fake(fake_provider: FakeProvider):
    """A request in IR, encoded for the chat wire, answered by the fake, decoded back."""
    channel = entry(fake_provider.base_url)
    request = ir.Request(model="caller-model", messages=[ir.Message(role="user", parts=[ir.TextPart("Convert me please")])])
    body = ADAPTOR.encode_request(request, model="gpt-4o-mini", wire="chat")
    status, raw = _post(url(channel, "gpt-4o-mini"), body, ADAPTOR.build_headers(channel, wire="chat"))
    assert status == 200, raw
    answer = ADAPTOR.decode_response(json.loads(raw), wire="chat")
    assert [p.text for p in answer.parts if isinstance(p, ir.TextPart)] == ["Fake reply to: Convert me please"]
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0


def test_embeddings_through_the_fake(fake_provider: FakeProvider):
    channel = entry(fake_provider.base_url)
    target = url(channel, "text-embedding-3-small", "embeddings", "embeddings")
    status, raw = _post(target, {"input": ["a", "b"], "dimensions": 8}, ADAPTOR.build_headers(channel, wire="embeddings"))
    assert status == 200, raw
    data = json.loads(raw)
    assert [len(d["embedding"]) for d in data["data"]] == [8, 8] and data["model"] == "text-embedding-3-small"


def test_a_wrong_key_is_refused_by_the_fake_as_azure_does(fake_provider: FakeProvider):
    channel = entry(fake_provider.base_url)
    status, raw = _post(url(channel), {"messages": [{"role": "user", "content": "x"}]}, {"Authorization": "Bearer azure-key"})
    assert status == 401 and json.loads(raw)["error"]["code"] == "401"


def test_responses_through_the_fake(fake_provider: FakeProvider):
    channel = entry(fake_provider.base_url)
    body = {"model": "gpt-4o", "input": "Hello there Azure"}
    status, raw = _post(url(channel, wire="responses"), body, ADAPTOR.build_headers(channel, wire="responses"))
    assert status == 200, raw
    assert json.loads(raw)["output"][-1]["content"][0]["text"] == "Fake reply to: Hello there Azure"
    assert fake_provider.requests()[-1]["path"] == "/openai/v1/responses"


def test_claude_deployment_through_the_fake(fake_provider: FakeProvider):
    """A chat caller's request converted to Messages for a Foundry Claude deployment."""
    channel = entry(fake_provider.base_url)
    model = "claude-sonnet-4-5"
    wire = ADAPTOR.upstream_format(channel, "chat", model=model)
    request = ir.Request(model="asked", messages=[ir.Message(role="user", parts=[ir.TextPart("Hello there Claude")])])
    body = ADAPTOR.encode_request(request, model=model, wire=wire)
    status, raw = _post(url(channel, model, wire=wire), body, ADAPTOR.build_headers(channel, wire=wire))
    assert status == 200, raw
    answer = ADAPTOR.decode_response(json.loads(raw), wire=wire)
    assert [p.text for p in answer.parts if isinstance(p, ir.TextPart)] == ["Fake reply to: Hello there Claude"]
    recorded = fake_provider.requests()[-1]
    assert recorded["path"] == "/anthropic/v1/messages" and recorded["body"]["model"] == model
