"""Unit tests of the pure parts of the fake provider (no process, no HTTP)."""

from __future__ import annotations

import json

import pytest

from fakeprovider.chat import BadRequest, plan_chat, stream_events
from fakeprovider.content import json_from_schema, reply_words, truncate_words
from fakeprovider.scenarios import DEFAULT, ScenarioError, parse_scenarios
from fakeprovider.tokens import (
    count_chat_prompt_tokens,
    count_embedding_tokens,
    count_tokens,
)

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


def test_tokenizer() -> None:
    assert count_tokens("") == 0
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("don't stop_me 42") == 5  # don ' t stop_me 42
    msgs = [{"role": "system", "content": "Be nice."},
            {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         {"type": "image_url", "image_url": {"url": "data:x"}}]},
            {"role": "assistant", "content": None}]
    assert count_chat_prompt_tokens(msgs) == (3 + 3) + (4 + 85 + 3) + 3
    fn = WEATHER["function"]
    assert count_chat_prompt_tokens([], [WEATHER]) == count_tokens(json.dumps(fn, separators=(",", ":")))
    assert count_embedding_tokens("a b") == 2
    assert count_embedding_tokens(["a b", "c"]) == 3
    assert count_embedding_tokens([1, 2, 3]) == 3
    assert count_embedding_tokens([[1, 2], [3]]) == 3


def test_scenario_parsing() -> None:
    sc = parse_scenarios("429,timeout=1.5,ttfb=200,slow=10,words=7,cached=3,cut,garbage")
    assert (sc.error, sc.timeout, sc.ttfb, sc.slow, sc.words, sc.cached, sc.cut, sc.garbage) == (
        429, 1.5, 0.2, 0.01, 7, 3, True, True)
    for bad in ("bogus", "words=x", "timeout=-1", "418"):
        with pytest.raises(ScenarioError):
            parse_scenarios(bad)


def test_json_from_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "s": {"type": "string"}, "e": {"enum": ["a", "b"]}, "n": {"type": "number"},
            "i": {"type": "integer"}, "b": {"type": "boolean"}, "a": {"type": "array", "items": {"type": "integer"}},
            "u": {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "o": {"oneOf": [{"type": "boolean"}]},
            "r": {"$ref": "#/$defs/Pt"}, "d": {"$ref": "#/definitions/Z"}, "z": {"type": "null"}, "q": {},
            "t": {"type": ["string", "null"]},
        },
        "$defs": {"Pt": {"type": "object", "properties": {"x": {"type": "number"}}}},
        "definitions": {"Z": {"type": "string", "enum": ["zz"]}},
    }
    assert json_from_schema(schema) == {
        "s": "example", "e": "a", "n": 0.5, "i": 1, "b": True, "a": [1], "u": 1, "o": True,
        "r": {"x": 0.5}, "d": "zz", "z": None, "q": None, "t": "example"}
    recursive = {"type": "object", "properties": {"child": {"$ref": "#"}}}
    assert isinstance(json_from_schema(recursive), dict)  # terminates


def test_reply_words_and_truncation() -> None:
    msgs = [{"role": "user", "content": "one two"}]
    assert reply_words(msgs) == ["Fake", "reply", "to:", "one", "two"]
    assert reply_words(msgs, 0) == []
    assert reply_words(msgs, 7) == ["Fake", "reply", "to:", "one", "two", "Fake", "reply"]
    # "to:" is 2 tokens, so a budget of 3 stops after "reply".
    assert truncate_words(["Fake", "reply", "to:"], 3) == (["Fake", "reply"], True)
    assert truncate_words(["Fake"], None) == (["Fake"], False)


def test_plan_chat_errors_and_stream_events() -> None:
    with pytest.raises(BadRequest) as exc:
        plan_chat({"model": "m", "messages": [{"content": "no role"}]}, DEFAULT)
    assert exc.value.param == "messages"
    chat = plan_chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, DEFAULT)
    head, body, tail = stream_events(chat, "chatcmpl-x", 1, DEFAULT, include_usage=False)
    assert len(head) == 1 and len(body) == 4 and tail[-1] == b"data: [DONE]\n\n"
    text = "".join(json.loads(e[6:])["choices"][0]["delta"]["content"] for e in body)
    assert text == chat.text == "Fake reply to: hi"
