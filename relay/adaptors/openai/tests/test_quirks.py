from __future__ import annotations

from relay.adaptors.openai.quirks import channel_quirks
from relay.snapshot import ChannelEntry


def channel(type_id: int, config: dict | None = None) -> ChannelEntry:
    return ChannelEntry(1, "c", type_id, "openai", "http://x", "k", {}, config or {}, 0, 1, True)


SCHEMA_BODY = {
    "model": "m",
    "messages": [{"role": "user", "content": "hi"}],
    "response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": {"type": "object"}}},
}


def test_deepseek_gets_json_object_with_the_schema_in_instructions():
    mended = channel_quirks(SCHEMA_BODY, channel=channel(36), wire="chat")
    assert mended["response_format"] == {"type": "json_object"}
    assert "JSON schema:" in mended["messages"][0]["content"] and mended["messages"][1:] == SCHEMA_BODY["messages"]


def test_config_decides_over_the_type_and_other_wires_are_untouched():
    assert channel_quirks(SCHEMA_BODY, channel=channel(36, {"json_schema": True}), wire="chat") is None
    assert channel_quirks(SCHEMA_BODY, channel=channel(8, {"json_schema": False}), wire="chat") is not None
    assert channel_quirks(SCHEMA_BODY, channel=channel(36), wire="responses") is None
    assert channel_quirks(SCHEMA_BODY, channel=channel(1), wire="chat") is None


def test_openrouter_provider_sort(settings):
    settings.OPENROUTER_PROVIDER_SORT = "throughput"
    body = {"model": "m", "messages": []}
    assert channel_quirks(body, channel=channel(20), wire="chat")["provider"] == {"sort": "throughput"}
    assert channel_quirks({**body, "provider": {"order": ["x"]}}, channel=channel(20), wire="chat") is None
    settings.OPENROUTER_PROVIDER_SORT = ""
    assert channel_quirks(body, channel=channel(20), wire="chat") is None
