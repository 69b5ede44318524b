"""The ``notools`` scenario: a plain text reply even when the request lists tools (agent CLIs
always send their tool list), in every protocol mode, stream or not; without it the same request
gets a tool call."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from fakeprovider.process import FakeProvider, start_fake_provider
from fakeprovider.scenarios import parse_scenarios

PROMPT = "Say hello in one sentence."
PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

# mode -> (path, headers, body); each body lists a tool and leaves tool_choice to the model.
MODES: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"Authorization": "Bearer sk-test"}, {
        "model": "m", "messages": [{"role": "user", "content": PROMPT}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": PARAMS}}],
    }),
    "anthropic": ("/v1/messages", {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}, {
        "model": "claude-fake-1", "max_tokens": 256, "messages": [{"role": "user", "content": PROMPT}],
        "tools": [{"name": "get_weather", "input_schema": PARAMS}],
    }),
    "responses": ("/v1/responses", {"Authorization": "Bearer sk-test"}, {
        "model": "m", "input": PROMPT, "tools": [{"type": "function", "name": "get_weather", "parameters": PARAMS}],
    }),
    "gemini": ("/v1beta/models/gemini-2.5-flash:{method}", {"x-goog-api-key": "AIza-fake"}, {
        "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {
            "type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}]}],
    }),
}


@pytest.fixture(scope="module")
def fp() -> Iterator[FakeProvider]:
    with start_fake_provider() as provider:
        yield provider


def call(fp: FakeProvider, mode: str, scenario: str | None, stream: bool) -> str:
    """The raw reply body (JSON or SSE text) of one request."""
    path, headers, body = MODES[mode]
    if mode == "gemini":
        path = path.format(method="streamGenerateContent?alt=sse" if stream else "generateContent")
    elif stream:
        body = {**body, "stream": True}
    req = urllib.request.Request(fp.url(path, scenario), data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


def test_parse() -> None:
    assert parse_scenarios("notools").notools is True
    assert parse_scenarios("notools,words=3").words == 3
    assert parse_scenarios("").notools is False


TOOL_MARKERS = ('"tool_calls"', '"tool_use"', '"function_call"', '"functionCall"')


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_notools_replies_in_text(fp: FakeProvider, mode: str, stream: bool) -> None:
    with_tools = call(fp, mode, None, stream)
    assert any(marker in with_tools for marker in TOOL_MARKERS)  # the default picks the tool

    raw = call(fp, mode, "notools", stream)
    assert not any(marker in raw for marker in TOOL_MARKERS), raw
    # Streams split the text into word deltas: check the words rather than the joined sentence.
    for word in ("Fake", "reply", "to:", "Say", "hello", "sentence."):
        assert f"{word}" in raw, (word, raw)
    if not stream:
        assert "Fake reply to: Say hello in one sentence." in raw
