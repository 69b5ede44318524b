"""Anthropic Messages converter: requests, responses and streams, checked against the official SDK.

Pure tests (no database, no network): the SDK talks to an httpx MockTransport that serves the
bytes our StreamEncoder produced, so its own stream accumulator validates the event order.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import orjson
import pytest

from relay import ir
from relay.converters import converter
from relay.converters import messages as conv
from relay.converters.messages import StreamDecoder, StreamEncoder

FIXTURES = Path(__file__).parent / "fixtures" / "messages"


def fixture(name: str) -> Any:
    data = (FIXTURES / name).read_bytes()
    return data if name.endswith(".sse") else json.loads(data)


def base(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 1024,
                            "messages": [{"role": "user", "content": "Hello"}]}
    body.update(kw)
    return body


def sdk_stream(sse: bytes) -> anthropic.types.Message:
    """Run the official SDK's streaming helper over `sse` and return its final message."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=sse)

    client = anthropic.Anthropic(api_key="test", base_url="http://upstream.test", max_retries=0,
                                 http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    with client.messages.stream(model="m", max_tokens=1024, messages=[{"role": "user", "content": "hi"}]) as stream:
        return stream.get_final_message()


def decode_all(data: bytes, chunk: int | None = None) -> list[ir.StreamEvent]:
    dec = StreamDecoder()
    events: list[ir.StreamEvent] = []
    if chunk is None:
        events += dec.feed(data)
    else:
        for i in range(0, len(data), chunk):
            events += dec.feed(data[i:i + chunk])
    return events + dec.close()


def encode_all(events: list[ir.StreamEvent], request: ir.Request | None = None) -> bytes:
    enc = StreamEncoder(request or ir.Request(model="m"), "msg_test", "claude-test", 0)
    return b"".join(enc.encode(e) for e in events) + enc.close()


def test_module_has_the_converter_interface() -> None:
    module = converter("messages")
    for name in ("request_to_ir", "request_from_ir", "response_to_ir", "response_from_ir", "StreamDecoder",
                 "StreamEncoder"):
        assert hasattr(module, name)


# ------------------------------------------------------------------------------ requests, inbound


def test_claude_code_request_converts_and_keeps_everything() -> None:
    body = fixture("claude_code_request.json")
    req = conv.request_to_ir(copy.deepcopy(body))
    assert [p.cache_control for p in req.system] == [None, {"type": "ephemeral", "ttl": "1h"}, {"type": "ephemeral"}]
    assert [m.role for m in req.messages] == ["user", "assistant", "tool", "user", "system", "assistant", "tool"]
    assert req.messages[0].parts[1].cache_control == {"type": "ephemeral"}
    thinking, text, call = req.messages[1].parts
    assert thinking == ir.ReasoningPart(text="I should run ls.", signature="ErUBCkYIBhgCIkCsig==")
    assert call == ir.ToolCallPart(id="toolu_01Ls", name="Bash",
                                   arguments='{"command":"ls","description":"List files"}')
    assert req.messages[2].parts[0] == ir.ToolResultPart("toolu_01Ls", [ir.TextPart("README.md\nsrc\n")])
    assert req.messages[4].parts == [ir.TextPart("The user changed the permission mode to acceptEdits.")]
    assert req.messages[6].parts[0].cache_control == {"type": "ephemeral"}
    assert len(req.tools) == 30 and req.tools[-1].cache_control == {"type": "ephemeral"}
    assert req.tools[0].parameters == body["tools"][0]["input_schema"]
    assert req.reasoning == ir.Reasoning(enabled=True, effort="high")
    assert req.extra["output_config"] == {"effort": "high"}
    assert req.extra["context_management"] == body["context_management"]
    assert req.user == "user_abc_account_def_session_123" and req.stream and req.include_usage
    assert req.tool_choice == ir.ToolChoice("auto")

    out = conv.request_from_ir(req)
    assert out["system"] == body["system"]
    assert out["thinking"] == {"type": "adaptive"}
    assert out["output_config"] == {"effort": "high"} and out["context_management"] == body["context_management"]
    assert out["tools"] == body["tools"] and out["tool_choice"] == {"type": "auto"}
    assert out["metadata"] == {"user_id": body["metadata"]["user_id"]}
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]  # alternating, system folded
    folded = out["messages"][2]["content"]
    assert [b["type"] for b in folded] == ["tool_result", "text", "text"]
    assert folded[2] == {"type": "text", "text": "System: The user changed the permission mode to acceptEdits."}
    assert out["messages"][1]["content"] == body["messages"][1]["content"]
    assert out["messages"][4]["content"] == [{**body["messages"][5]["content"][0],  # strings become blocks
                                              "content": [{"type": "text", "text": "# Demo\n"}]}]


def test_anthropic_request_round_trips_unchanged() -> None:
    body = {
        "model": "claude-sonnet-4-5", "max_tokens": 2048, "stream": True, "temperature": 0.5, "top_k": 40,
        "top_p": 0.9, "stop_sequences": ["END"], "metadata": {"user_id": "u1"},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image and document?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                 "title": "spec.pdf", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}},
                {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                    {"type": "text", "text": "found"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}}]},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "boom"}],
                 "is_error": True},
            ]},
        ],
        "tools": [
            {"name": "lookup", "description": "Look up", "input_schema": {"type": "object", "properties": {"q": {}}}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            {"type": "bash_20250124", "name": "bash"},
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "container": "container_123",
        "service_tier": "auto",
    }
    req = conv.request_to_ir(copy.deepcopy(body))
    assert req.parallel_tool_calls is False and req.tool_choice == ir.ToolChoice("required")
    assert [t.builtin_type for t in req.tools] == [None, "web_search", "bash"]
    assert req.tools[1].kind == "builtin" and req.tools[1].raw == body["tools"][1]
    assert req.messages[1].parts[0] == ir.ReasoningPart(encrypted="EmwKAhgBEgy3va3pzix", redacted=True)
    assert req.messages[0].parts[4].data == "cGxhaW4gd29yZHM="  # text documents become base64 FileParts
    assert conv.request_from_ir(req) == body


def test_user_turn_with_tool_results_is_split_in_order() -> None:
    body = base(messages=[
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {"role": "user", "content": [
            {"type": "text", "text": "before"},
            {"type": "tool_result", "tool_use_id": "t1", "content": "r1"},
            {"type": "text", "text": "after"},
        ]},
    ])
    req = conv.request_to_ir(body)
    assert [(m.role, len(m.parts)) for m in req.messages] == [
        ("user", 1), ("assistant", 1), ("user", 1), ("tool", 1), ("user", 1)]
    out = conv.request_from_ir(req)["messages"][2]["content"]
    assert [b.get("text", b["type"]) for b in out] == ["tool_result", "before", "after"]


def test_thinking_modes_and_sampling() -> None:
    req = conv.request_to_ir(base(thinking={"type": "enabled", "budget_tokens": 2000}, temperature=1,
                                  max_tokens=4096))
    assert req.reasoning == ir.Reasoning(enabled=True, budget_tokens=2000)
    out = conv.request_from_ir(req)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2000} and "temperature" not in out
    req = conv.request_to_ir(base(thinking={"type": "disabled"}, temperature=0.2))
    assert req.reasoning == ir.Reasoning(enabled=False)
    assert conv.request_from_ir(req)["thinking"] == {"type": "disabled"}
    assert conv.request_from_ir(req)["temperature"] == 0.2


def test_server_blocks_in_history_are_kept_raw() -> None:
    search_use = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}}
    search_result = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [
        {"type": "web_search_result", "url": "https://a.example", "title": "A", "encrypted_content": "xyz"}]}
    body = base(messages=[{"role": "user", "content": [{"type": "text", "text": "q"}]},
                          {"role": "assistant", "content": [search_use, search_result, {"type": "text", "text": "A."}]},
                          {"role": "user", "content": [{"type": "text", "text": "more"}]}])
    req = conv.request_to_ir(copy.deepcopy(body))
    use, result, _ = req.messages[1].parts
    assert use.kind == "builtin" and use.raw == search_use and use.arguments == '{"query":"q"}'
    assert result.kind == "builtin" and result.id == "srvtoolu_1" and result.raw == search_result
    assert conv.request_from_ir(req)["messages"] == body["messages"]


def test_output_config_format_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    req = conv.request_to_ir(base(output_config={"format": {"type": "json_schema", "schema": schema}}))
    assert req.response_format == ir.ResponseFormat("json_schema", schema=schema)
    assert "output_config" not in req.extra


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m", "messages": []}, "max_tokens"),
    ({"max_tokens": 5, "messages": []}, "model"),
    ({"model": "m", "max_tokens": 5}, "messages"),
    ({"model": "m", "max_tokens": "5", "messages": []}, "max_tokens"),
    (base(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "bogus"}]}]),
     "messages.1.content.0.type"),
    (base(messages=[{"role": "user", "content": [{"text": "no type"}]}]), "messages.0.content.0.type"),
    (base(messages=[{"role": "robot", "content": "a"}]), "messages.0.role"),
    (base(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
    (base(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages.0.content.0.text"),
    (base(messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "ftp"}}]}]),
     "messages.0.content.0.source.type"),
    (base(messages=[{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "x"}]}]),
     "messages.0.content.0.type"),
    (base(messages=[{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": []}]}]),
     "messages.0.content.0.input"),
    (base(system=[{"type": "image"}]), "system.0.type"),
    (base(system=7), "system"),
    (base(tools=[{"description": "no name", "input_schema": {"type": "object"}}]), "tools.0.name"),
    (base(tools={"name": "x"}), "tools"),
    (base(tool_choice={"type": "sometimes"}), "tool_choice.type"),
    (base(tool_choice={"type": "tool"}), "tool_choice.name"),
    (base(thinking={"type": "enabled"}), "thinking.budget_tokens"),
    (base(temperature="hot"), "temperature"),
    (base(stop_sequences="END"), "stop_sequences"),
])
def test_bad_requests_raise_conversion_error_with_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ir.ConversionError) as info:
        conv.request_to_ir(body)
    assert info.value.param == param


def test_unknown_fields_go_to_extra() -> None:
    req = conv.request_to_ir(base(mcp_servers=[{"type": "url", "url": "https://mcp.example"}], speed="fast"))
    assert req.extra == {"mcp_servers": [{"type": "url", "url": "https://mcp.example"}], "speed": "fast"}


# ------------------------------------------------------------------------------ requests, upstream


def chat_like_request(**kw: Any) -> ir.Request:
    """An IR request as the Chat converter would produce it."""
    req = ir.Request(
        model="claude-sonnet-4-5",
        system=[ir.TextPart("You are helpful.")],
        messages=[
            ir.Message("user", [ir.TextPart("Look at this"),
                                ir.ImagePart(url="data:image/png;base64,iVBORw0KGgo=", detail="low"),
                                ir.ImagePart(url="https://example.com/a.png")]),
            ir.Message("user", [ir.TextPart("and answer")]),
            ir.Message("assistant", [ir.ReasoningPart(text="openai reasoning, no signature"), ir.TextPart(""),
                                     ir.ToolCallPart("call_1", "f", '{"x": 1}'),
                                     ir.ToolCallPart("call_2", "f", '{"x": 1')]),  # truncated JSON
            ir.Message("tool", [ir.ToolResultPart("call_1", [ir.TextPart("one")])]),
            ir.Message("tool", [ir.ToolResultPart("call_2", [ir.TextPart("two")])]),
            ir.Message("developer", [ir.TextPart("Answer in French.")]),
            ir.Message("user", [ir.TextPart("go on")]),
        ],
        tools=[ir.ToolDef("f", "F", {"type": "object", "properties": {"x": {"type": "integer"}}}),
               ir.ToolDef("g"),
               ir.ToolDef("web_search_preview", kind="builtin", builtin_type="web_search_preview",
                          raw={"type": "web_search_preview"}),
               ir.ToolDef("code_interpreter", kind="builtin", builtin_type="code_interpreter",
                          raw={"type": "code_interpreter"})],
        temperature=1.7, stop=["\n\n", "STOP"], seed=3, n=1,
        extra={"logprobs": True, "service_tier": "flex", "stream_options": {"include_usage": True}},
    )
    for key, value in kw.items():
        setattr(req, key, value)
    return req


def test_request_from_chat_like_ir() -> None:
    out = conv.request_from_ir(chat_like_request())
    assert out["max_tokens"] == conv.DEFAULT_MAX_TOKENS and out["temperature"] == 1.0
    assert out["system"] == [{"type": "text", "text": "You are helpful."}]
    assert out["stop_sequences"] == ["STOP"]
    assert set(out) == {"model", "max_tokens", "system", "messages", "tools", "temperature", "stop_sequences"}
    user, assistant, results = out["messages"]
    assert user["content"] == [
        {"type": "text", "text": "Look at this"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "text", "text": "and answer"},
    ]
    assert assistant["content"] == [  # unsigned reasoning and the empty text are dropped
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}},
        {"type": "tool_use", "id": "call_2", "name": "f", "input": {}},
    ]
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "one"}]},
        {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "two"}]},
        {"type": "text", "text": "System: Answer in French."},
        {"type": "text", "text": "go on"},
    ]
    assert out["tools"] == [
        {"name": "f", "description": "F", "input_schema": {"type": "object", "properties": {"x": {"type": "integer"}}}},
        {"name": "g", "input_schema": {"type": "object", "properties": {}}},
        {"type": "web_search_20250305", "name": "web_search"},
    ]


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    (ir.ToolChoice("auto"), None, {"type": "auto"}),
    (ir.ToolChoice("required"), None, {"type": "any"}),
    (ir.ToolChoice("none"), False, {"type": "none"}),
    (ir.ToolChoice("tool", "f"), False, {"type": "tool", "name": "f", "disable_parallel_tool_use": True}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
])
def test_tool_choice_mapping(choice: ir.ToolChoice | None, parallel: bool | None, expected: dict[str, Any]) -> None:
    out = conv.request_from_ir(chat_like_request(tool_choice=choice, parallel_tool_calls=parallel))
    assert out["tool_choice"] == expected


def test_structured_output_uses_a_forced_tool_and_comes_back_as_text() -> None:
    schema = {"type": "object", "properties": {"topic": {"type": "string"}, "confidence": {"type": "number"}},
              "required": ["topic", "confidence"]}
    req = ir.Request(model="m", messages=[ir.Message("user", [ir.TextPart("classify")])],
                     response_format=ir.ResponseFormat("json_schema", name="topic classification", schema=schema),
                     reasoning=ir.Reasoning(effort="high"), max_output_tokens=512)
    out = conv.request_from_ir(req)
    name = conv.structured_tool_name("topic classification")
    assert name == "__json_topic_classification" and name.startswith(conv.STRUCTURED_TOOL_PREFIX)
    assert out["tools"][0]["name"] == name and out["tools"][0]["input_schema"] == schema
    assert out["tool_choice"] == {"type": "tool", "name": name}
    assert "thinking" not in out  # Anthropic refuses thinking with a forced tool

    upstream = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "tool_use",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": name,
                             "input": {"topic": "sports", "confidence": 0.9}}],
                "usage": {"input_tokens": 10, "output_tokens": 5}}
    resp = conv.response_to_ir(upstream)
    assert resp.parts == [ir.TextPart('{"topic":"sports","confidence":0.9}')] and resp.stop_reason == "stop"

    # With the caller's own tools the model may call one of them or answer through the JSON tool.
    req.tools = [ir.ToolDef("f")]
    req.response_format = ir.ResponseFormat("json_object")
    out = conv.request_from_ir(req)
    assert out["tool_choice"] == {"type": "any"}
    assert out["tools"][1]["name"] == "__json_response" and out["tools"][1]["input_schema"] == {"type": "object"}


@pytest.mark.parametrize(("reasoning", "max_tokens", "expected"), [
    (ir.Reasoning(effort="low"), 8000, {"type": "enabled", "budget_tokens": 1024}),
    (ir.Reasoning(effort="medium"), 8000, {"type": "enabled", "budget_tokens": 4096}),
    (ir.Reasoning(effort="high"), 8000, {"type": "enabled", "budget_tokens": 7999}),  # capped below max_tokens
    (ir.Reasoning(enabled=True), 8000, {"type": "enabled", "budget_tokens": 4000}),
    (ir.Reasoning(enabled=True), None, {"type": "enabled", "budget_tokens": 2048}),
    (ir.Reasoning(enabled=True), 100000, {"type": "enabled", "budget_tokens": 16000}),
    (ir.Reasoning(enabled=True, budget_tokens=3000), 8000, {"type": "enabled", "budget_tokens": 3000}),
    (ir.Reasoning(enabled=True), 1000, None),  # no room for the 1024 minimum
    (ir.Reasoning(effort="minimal"), 8000, None),
    (ir.Reasoning(enabled=False), 8000, {"type": "disabled"}),
])
def test_reasoning_to_thinking(reasoning: ir.Reasoning, max_tokens: int | None, expected: Any) -> None:
    req = ir.Request(model="m", messages=[ir.Message("user", [ir.TextPart("hi")])], reasoning=reasoning,
                     max_output_tokens=max_tokens, temperature=0.3, top_p=0.5, top_k=5)
    out = conv.request_from_ir(req)
    assert out.get("thinking") == expected
    sampling = {k: out[k] for k in ("temperature", "top_p", "top_k") if k in out}
    assert sampling == ({} if expected and expected["type"] == "enabled" else
                        {"temperature": 0.3, "top_p": 0.5, "top_k": 5})


def test_thinking_is_dropped_when_the_tool_loop_has_no_signed_thinking() -> None:
    req = chat_like_request(reasoning=ir.Reasoning(enabled=True), max_output_tokens=8000)
    req.messages = req.messages[:5]  # ... assistant tool calls (unsigned reasoning), tool results
    assert "thinking" not in conv.request_from_ir(req)
    req.messages[2].parts[0] = ir.ReasoningPart(text="signed", signature="sig")
    assert conv.request_from_ir(req)["thinking"]["type"] == "enabled"


def test_request_from_ir_never_crashes_on_odd_parts() -> None:
    req = ir.Request(model="m", messages=[
        ir.Message("user", [ir.FilePart(data="aGVsbG8=", media_type="text/plain", filename="a.txt"),
                            ir.FilePart(file_id="file_1"), ir.FilePart(url="https://e.com/x.pdf")]),
        ir.Message("assistant", [ir.ToolCallPart("c", "shell", "ls -la", kind="custom"),
                                 ir.ToolCallPart("ws", "web_search", kind="builtin", raw={"type": "web_search_call"}),
                                 ir.ReasoningPart(encrypted="openai-encrypted")]),
        ir.Message("system", [ir.TextPart("late system")]),
    ])
    out = conv.request_from_ir(req)
    assert out["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello"}, "title": "a.txt"},
        {"type": "document", "source": {"type": "file", "file_id": "file_1"}},
        {"type": "document", "source": {"type": "url", "url": "https://e.com/x.pdf"}},
    ]
    assert out["messages"][1]["content"] == [{"type": "tool_use", "id": "c", "name": "shell",
                                              "input": {"input": "ls -la"}}]
    assert out["messages"][2] == {"role": "user", "content": [{"type": "text", "text": "System: late system"}]}
    with pytest.raises(ir.ConversionError):
        conv.request_from_ir(ir.Request(model="m", messages=[ir.Message("user", [ir.AudioPart("AAA", "wav")])]))


def test_fold_system_messages_for_pass_through() -> None:
    body = fixture("claude_code_request.json")
    folded = conv.fold_system_messages(body)
    assert folded is not body and body["messages"][3]["role"] == "system"  # the input is not mutated
    assert [m["role"] for m in folded["messages"]] == ["user", "assistant", "user", "assistant", "user"]
    assert folded["messages"][2]["content"] == [
        *body["messages"][2]["content"],
        {"type": "text", "text": "System: The user changed the permission mode to acceptEdits."},
    ]
    assert {k: v for k, v in folded.items() if k != "messages"} == {k: v for k, v in body.items() if k != "messages"}
    plain = base()
    assert conv.fold_system_messages(plain) is plain
    # A system message before a tool-result turn: results stay first; cache_control kept.
    odd = base(messages=[
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
        {"role": "developer", "content": [{"type": "text", "text": "note", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "r"}]},
        {"role": "user", "content": "separate turn, left as sent"},
        {"role": "system", "content": ""},
    ])
    assert conv.fold_system_messages(odd)["messages"][2:] == [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "r"},
                                     {"type": "text", "text": "System: note", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "separate turn, left as sent"},
    ]


# ------------------------------------------------------------------------------ responses


def test_response_to_ir_reads_blocks_and_usage() -> None:
    resp = conv.response_to_ir(fixture("response_full.json"))
    assert resp.id == "msg_01Full" and resp.stop_reason == "tool_calls"
    assert resp.parts == [
        ir.ReasoningPart(text="Need the weather first.", signature="EqQBCgIYAhIMsig"),
        ir.ReasoningPart(encrypted="EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP", redacted=True),
        ir.TextPart("I'll look that up."),
        ir.ToolCallPart("toolu_01A", "get_weather", '{"location":"San Francisco, CA","unit":"celsius"}'),
    ]
    assert resp.usage == ir.Usage(prompt_tokens=1550, completion_tokens=77, cached_tokens=1200,
                                  cache_write_tokens=100, cache_write_1h_tokens=200)


def test_response_round_trip_validates_with_the_sdk() -> None:
    payload = fixture("response_full.json")
    out = conv.response_from_ir(conv.response_to_ir(payload), ir.Request(model="m"))
    message = anthropic.types.Message.model_validate(out)
    assert message.content == anthropic.types.Message.model_validate(payload).content
    usage = {k: v for k, v in payload["usage"].items() if k != "service_tier"}
    assert out["usage"] == usage and out["stop_reason"] == "tool_use"


@pytest.mark.parametrize(("reason", "expected"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("refusal", "refusal"), ("pause_turn", "pause"), ("model_context_window_exceeded", "length"), (None, "stop"),
])
def test_stop_reasons(reason: str | None, expected: str) -> None:
    resp = conv.response_to_ir({"id": "msg_x", "content": [], "stop_reason": reason, "usage": {}})
    assert resp.stop_reason == expected


def test_response_from_chat_like_ir() -> None:
    resp = ir.Response(
        id="chatcmpl-1", model="gpt-4o", stop_reason="stop", reasoning_tokens=7,
        parts=[ir.ReasoningPart(text="thinking aloud"), ir.TextPart("Hi"), ir.ToolCallPart("call_1", "f", "{bad")],
        usage=ir.Usage(prompt_tokens=100, completion_tokens=20, cached_tokens=30),
    )
    out = conv.response_from_ir(resp, ir.Request(model="gpt-4o"))
    message = anthropic.types.Message.model_validate(out)
    assert message.id == "msg_chatcmpl-1" and message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[2].input == {}
    assert message.usage.input_tokens == 70 and message.usage.cache_read_input_tokens == 30
    assert message.usage.output_tokens_details.thinking_tokens == 7
    stopped = conv.response_from_ir(ir.Response(id="msg_1", model="m", stop_sequence="END"), ir.Request(model="m"))
    assert stopped["stop_reason"] == "stop_sequence" and stopped["stop_sequence"] == "END"


# ------------------------------------------------------------------------------ stream decoder

EXPECTED_STREAM: list[ir.StreamEvent] = [
    ir.StreamStart("msg_01Stream", "claude-sonnet-4-5", usage=ir.Usage(
        prompt_tokens=2112, completion_tokens=1, cached_tokens=2000, cache_write_tokens=40, cache_write_1h_tokens=60)),
    ir.PartStart(0, "reasoning"),
    ir.ReasoningDelta(0, text="The user wants the weather. "),
    ir.ReasoningDelta(0, text="I will call the tool."),
    ir.ReasoningDelta(0, signature="EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"),
    ir.PartStop(0),
    ir.PartStart(1, "text"),
    ir.TextDelta(1, "Let me check "),
    ir.TextDelta(1, "the weather in Paris été ☀️."),
    ir.PartStop(1),
    ir.PartStart(2, "tool_call", tool_call_id="toolu_01Weather", tool_name="get_weather"),
    ir.ToolArgsDelta(2, '{"location": "Par'),
    ir.ToolArgsDelta(2, 'is", "unit": "celsius"}'),
    ir.PartStop(2),
    ir.StreamEnd("tool_calls", usage=ir.Usage(prompt_tokens=2112, completion_tokens=89, cached_tokens=2000,
                                              cache_write_tokens=40, cache_write_1h_tokens=60)),
]


def test_decoder_reads_the_official_event_sequence() -> None:
    assert decode_all(fixture("stream_thinking_tool.sse")) == EXPECTED_STREAM


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_decoder_byte_by_byte_equals_all_at_once(chunk: int) -> None:
    data = fixture("stream_thinking_tool.sse").replace(b"\n", b"\r\n") if chunk == 7 else fixture(
        "stream_thinking_tool.sse")
    assert decode_all(data, chunk) == EXPECTED_STREAM


def test_decoder_errors_and_truncation() -> None:
    data = fixture("stream_thinking_tool.sse")
    cut = decode_all(data[: data.index(b"event: message_delta")])
    assert isinstance(cut[-1], ir.StreamError) and "message_stop" in cut[-1].message
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    err = decode_all(data[: data.index(b"event: content_block_stop")] + error + data)  # nothing counts after it
    assert err[-1] == ir.StreamError("Overloaded", "overloaded_error")
    garbage = decode_all(b"event: message_start\ndata: {not json\n\n")
    assert len(garbage) == 1 and isinstance(garbage[0], ir.StreamError)


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


def test_decoder_structured_tool_server_blocks_and_empty_args() -> None:
    start = {"type": "message_start", "message": {"id": "msg_s", "model": "m", "usage": {"input_tokens": 5}}}
    data = sse(
        start,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "server_tool_use", "id": "srv",
                                                                       "name": "web_search", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "web_search_tool_result",
                                                                       "tool_use_id": "srv", "content": []}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "t",
                                                                       "name": "__json_response", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"a":'}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "1}"}},
        {"type": "content_block_stop", "index": 2},
        {"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "t2", "name": "now",
                                                                       "input": {}}},
        {"type": "content_block_stop", "index": 3},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
         "usage": {"output_tokens": 9, "input_tokens": 6, "output_tokens_details": {"thinking_tokens": 2}}},
        {"type": "message_stop"},
    )
    assert decode_all(data) == [
        ir.StreamStart("msg_s", "m", usage=ir.Usage(prompt_tokens=5)),
        ir.PartStart(0, "text"), ir.TextDelta(0, '{"a":'), ir.TextDelta(0, "1}"), ir.PartStop(0),
        ir.PartStart(1, "tool_call", tool_call_id="t2", tool_name="now"), ir.ToolArgsDelta(1, "{}"), ir.PartStop(1),
        ir.StreamEnd("tool_calls", usage=ir.Usage(prompt_tokens=6, completion_tokens=9), reasoning_tokens=2),
    ]


# ------------------------------------------------------------------------------ stream encoder


def test_encoder_output_of_the_decoded_fixture_satisfies_the_sdk() -> None:
    data = encode_all(EXPECTED_STREAM)
    message = sdk_stream(data)
    assert message.id == "msg_test" and message.model == "claude-test" and message.stop_reason == "tool_use"
    thinking, text, tool = message.content
    assert thinking.thinking == "The user wants the weather. I will call the tool."
    assert thinking.signature == "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
    assert text.text == "Let me check the weather in Paris été ☀️."
    assert (tool.id, tool.name, tool.input) == ("toolu_01Weather", "get_weather",
                                               {"location": "Paris", "unit": "celsius"})
    assert message.usage.input_tokens == 12 and message.usage.output_tokens == 89
    assert message.usage.cache_read_input_tokens == 2000 and message.usage.cache_creation_input_tokens == 100
    # and our own decoder reads it back to the same IR events (modulo the StreamStart id/model)
    back = decode_all(data)
    assert back[1:] == EXPECTED_STREAM[1:]
    assert back[0] == ir.StreamStart("msg_test", "claude-test", usage=ir.Usage(
        prompt_tokens=2112, cached_tokens=2000, cache_write_tokens=40, cache_write_1h_tokens=60))


def test_encoder_official_event_order() -> None:
    data = encode_all(EXPECTED_STREAM)
    types = [line[7:] for line in data.decode().split("\n") if line.startswith("event: ")]
    assert types == ["message_start",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta",
                     "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]


def test_encoder_handles_chat_shaped_events() -> None:
    """Events as a Chat upstream produces them: no StreamStart usage, interleaved parts, no stops,
    finish "stop" although tools were called, usage only at the end."""
    events: list[ir.StreamEvent] = [
        ir.StreamStart("chatcmpl-1", "gpt-4o"),
        ir.PartStart(0, "reasoning"), ir.ReasoningDelta(0, text="hmm "),
        ir.PartStart(1, "text"), ir.TextDelta(1, "Sure."),
        ir.ReasoningDelta(0, text="late reasoning"),  # reopens a thinking block
        ir.PartStart(2, "tool_call", tool_call_id="call_a", tool_name="f"), ir.ToolArgsDelta(2, '{"x":'),
        ir.PartStart(3, "tool_call", tool_call_id="call_b", tool_name="g"), ir.ToolArgsDelta(3, "{}"),
        ir.ToolArgsDelta(2, "1}"),  # late delta of a closed tool call: cannot be expressed, dropped
        ir.PartStart(4, "reasoning"), ir.ReasoningDelta(4, encrypted="enc"), ir.PartStop(4),
        ir.StreamEnd("stop", usage=ir.Usage(prompt_tokens=50, completion_tokens=10, cached_tokens=20),
                     reasoning_tokens=3),
    ]
    message = sdk_stream(encode_all(events))
    assert [b.type for b in message.content] == ["thinking", "text", "thinking", "tool_use", "tool_use",
                                                 "redacted_thinking"]
    assert message.content[0].thinking == "hmm " and message.content[0].signature == ""
    assert message.content[3].input == {}  # '{"x":' then the dropped late delta: partial JSON parses to {}
    assert message.content[4].input == {} and message.content[5].data == "enc"
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 30 and message.usage.cache_read_input_tokens == 20
    assert message.usage.output_tokens == 10


def test_encoder_stop_sequence_and_no_usage() -> None:
    events = [ir.PartStart(0, "text"), ir.TextDelta(0, "a"), ir.StreamEnd("stop", stop_sequence="END")]
    message = sdk_stream(encode_all(events))  # no StreamStart at all: message_start is still first
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "END"
    assert message.content[0].text == "a" and message.usage.output_tokens == 0


def test_encoder_error_event_reaches_the_sdk() -> None:
    enc = StreamEncoder(ir.Request(model="m"), "msg_e", "m", 0)
    data = enc.encode(ir.StreamStart("x", "m")) + enc.encode(ir.PartStart(0, "text")) + enc.encode(
        ir.TextDelta(0, "partial")) + enc.error("upstream failed", "server_error")
    assert data.endswith(b'event: error\ndata: {"type":"error","error":{"type":"api_error",'
                         b'"message":"upstream failed"}}\n\n')
    assert enc.encode(ir.StreamEnd()) == b"" and enc.close() == b""
    with pytest.raises(anthropic.APIStatusError):
        sdk_stream(data)


# ------------------------------------------------------------------------------ against the fake upstream


@pytest.fixture(scope="module")
def fake() -> Any:
    from fakeprovider.process import start_fake_provider

    with start_fake_provider(record=False) as provider:
        yield provider


def upstream(fake: Any, body: dict[str, Any]) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(fake.url("/v1/messages"), data=orjson.dumps(body), method="POST", headers={
        "x-api-key": "k", "anthropic-version": "2023-06-01", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_converted_claude_code_request_is_accepted_upstream(fake: Any) -> None:
    body = fixture("claude_code_request.json")
    status, raw = upstream(fake, {**body, "stream": False})
    assert status == 400 and b'role \\"system\\"' in raw  # as sent, Anthropic refuses the mid-conversation system
    out = conv.request_from_ir(conv.request_to_ir(copy.deepcopy(body)))
    status, raw = upstream(fake, out)
    assert status == 200, raw
    events = decode_all(raw)
    assert isinstance(events[0], ir.StreamStart) and isinstance(events[-1], ir.StreamEnd)
    message = sdk_stream(encode_all(events))
    assert [b.type for b in message.content] == ["thinking", "text"] and message.stop_reason == "end_turn"


def test_chat_like_ir_is_accepted_upstream_stream_and_not(fake: Any) -> None:
    req = chat_like_request(reasoning=ir.Reasoning(effort="medium"), max_output_tokens=8000)
    body = conv.request_from_ir(req)
    assert "thinking" not in body  # the pending tool calls came without a signed thinking block
    status, raw = upstream(fake, body)
    assert status == 200, raw
    resp = conv.response_to_ir(orjson.loads(raw))
    assert resp.stop_reason == "tool_calls" and resp.parts == [ir.ToolCallPart("toolu_fake_0", "f", '{"x":1}')]
    req.stream = True
    status, raw = upstream(fake, conv.request_from_ir(req))
    assert status == 200
    events = decode_all(raw, 5)
    assert events[-1] == ir.StreamEnd("tool_calls", usage=resp.usage)
    assert "".join(e.arguments for e in events if isinstance(e, ir.ToolArgsDelta)) == '{"x":1}'

    # A fresh conversation keeps thinking: the answer carries a signed thinking block.
    req = ir.Request(model="m", messages=[ir.Message("user", [ir.TextPart("hi")])], reasoning=ir.Reasoning(
        effort="medium"), max_output_tokens=8000, temperature=0.2)
    status, raw = upstream(fake, conv.request_from_ir(req))
    assert status == 200, raw
    resp = conv.response_to_ir(orjson.loads(raw))
    assert [type(p) for p in resp.parts] == [ir.ReasoningPart, ir.TextPart] and resp.parts[0].signature


@pytest.mark.parametrize("stream", [False, True])
def test_structured_output_through_the_fake_upstream(fake: Any, stream: bool) -> None:
    schema = {"type": "object", "properties": {"topic": {"type": "string"}, "confidence": {"type": "number"}},
              "required": ["topic", "confidence"]}
    req = ir.Request(model="m", stream=stream, messages=[ir.Message("user", [ir.TextPart("classify: football")])],
                     response_format=ir.ResponseFormat("json_schema", name="topic_classification", schema=schema))
    status, raw = upstream(fake, conv.request_from_ir(req))
    assert status == 200, raw
    if stream:
        events = decode_all(raw)
        text = "".join(e.text for e in events if isinstance(e, ir.TextDelta))
        assert isinstance(events[1], ir.PartStart) and events[1].kind == "text"
        assert events[-1].stop_reason == "stop"
    else:
        resp = conv.response_to_ir(orjson.loads(raw))
        assert resp.stop_reason == "stop" and len(resp.parts) == 1
        text = resp.parts[0].text
    assert json.loads(text) == {"topic": "example", "confidence": 0.5}
