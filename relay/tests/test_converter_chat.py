"""OpenAI Chat Completions converter (relay.converters.chat): requests, responses and streams
against the IR, checked with the official `openai` SDK's own models."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from relay.converters import chat
from relay.converters.chat_stream import chat_id
from relay.ir import (
    AudioPart,
    ConversionError,
    FilePart,
    ImagePart,
    Message,
    Reasoning,
    ReasoningPart,
    Request,
    Response,
    ResponseFormat,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolDef,
    ToolResultPart,
    Usage,
)

from .chat_fixtures import fixture

# ============================================================================ request -> IR


def test_request_to_ir_reads_every_field():
    ir = chat.request_to_ir(fixture("request_full.json"))
    assert ir.model == "gpt-4o"
    assert ir.system == [TextPart("You are a weather bot."), TextPart("Answer briefly.")]
    user, assistant, result1, result2, developer, last = ir.messages
    assert user.role == "user" and user.name == "alice"
    assert user.parts[0] == TextPart("What is in this image, and what is the weather in Paris?")
    assert user.parts[1] == ImagePart(url=user.parts[1].url, detail="high")
    assert user.parts[2].url.startswith("data:image/png;base64,")  # data URLs stay URLs
    assert user.parts[2].data is None
    assert isinstance(user.parts[3], AudioPart) and user.parts[3].format == "wav"
    assert user.parts[4] == FilePart(data="JVBERi0xLjQK", media_type="application/pdf", filename="report.pdf")
    assert user.parts[5] == FilePart(file_id="file-abc123")
    assert assistant.role == "assistant"
    assert assistant.parts == [
        ReasoningPart(text="The user wants the weather; call the tool."),
        TextPart("Let me check."),
        ToolCallPart(
            id="call_abc123", name="get_current_weather", arguments='{"location": "Paris", "unit": "celsius"}'
        ),
        ToolCallPart(id="call_def456", name="run_sql", arguments="SELECT 1", kind="custom"),
    ]
    assert result1 == Message(role="tool", parts=[ToolResultPart("call_abc123", [TextPart("22 degrees and sunny")])])
    assert result2.parts == [ToolResultPart("call_def456", [TextPart("1")])]
    assert developer == Message(role="developer", parts=[TextPart("Use metric units.")])  # later: stays in place
    assert last.parts == [TextPart("Thanks! And tomorrow?")]

    function_tool, custom_tool = ir.tools
    assert function_tool.name == "get_current_weather" and function_tool.strict is False
    assert function_tool.parameters["required"] == ["location"]
    assert custom_tool.kind == "custom" and custom_tool.description == "Run a SQL query"
    assert ir.tool_choice == ToolChoice(mode="tool", name="get_current_weather")
    assert ir.parallel_tool_calls is False
    assert ir.response_format == ResponseFormat(
        type="json_schema",
        name="weather",
        description="A forecast",
        schema=fixture("request_full.json")["response_format"]["json_schema"]["schema"],
        strict=True,
    )
    assert ir.max_output_tokens == 512
    assert (ir.temperature, ir.top_p, ir.seed, ir.n) == (0.7, 0.9, 42, 1)
    assert ir.stop == ["\n\n", "END"]
    assert ir.stream is True and ir.include_usage is True
    assert (ir.user, ir.metadata, ir.store) == ("user-1234", {"session": "s1"}, False)
    assert ir.reasoning == Reasoning(effort="low")
    assert ir.top_k == 40
    assert ir.extra == {
        "logprobs": True,
        "top_logprobs": 2,
        "logit_bias": {"50256": -100},
        "frequency_penalty": 0.5,
        "presence_penalty": 0.1,
        "service_tier": "auto",
        "top_k": 40,
    }


def test_request_small_forms():
    ir = chat.request_to_ir(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "late system"},
                {"role": "assistant", "content": None, "reasoning": "openrouter style", "refusal": "I can't."},
                {"role": "user", "content": [{"type": "image_url", "image_url": "https://x/y.png"}]},
            ],
            "stop": "END",
            "max_completion_tokens": 10,
            "tool_choice": "none",
        }
    )
    assert ir.system == []
    assert ir.messages[1] == Message(role="system", parts=[TextPart("late system")])
    assert ir.messages[2].parts == [ReasoningPart(text="openrouter style"), TextPart("I can't.")]
    assert ir.messages[3].parts == [ImagePart(url="https://x/y.png")]
    assert ir.stop == ["END"] and ir.max_output_tokens == 10
    assert ir.tool_choice == ToolChoice(mode="none")
    assert ir.stream is False and ir.include_usage is False


def test_request_legacy_functions_become_tools():
    ir = chat.request_to_ir(
        {
            "model": "gpt-3.5-turbo",
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": None, "function_call": {"name": "w", "arguments": "{}"}},
                {"role": "function", "name": "w", "content": "sunny"},
            ],
            "functions": [{"name": "w", "parameters": {"type": "object"}}],
            "function_call": {"name": "w"},
        }
    )
    call = ir.messages[1].parts[0]
    assert isinstance(call, ToolCallPart) and call.name == "w"
    assert ir.messages[2].parts == [ToolResultPart(call.id, [TextPart("sunny")])]
    assert ir.tools == [ToolDef(name="w", parameters={"type": "object"})]
    assert ir.tool_choice == ToolChoice(mode="tool", name="w")
    assert "functions" not in ir.extra and "function_call" not in ir.extra


BASE = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"model": None}, "model"),
        ({"messages": "hi"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "a"}, "b"]}, "messages[1]"),
        ({"messages": [{"role": "robot", "content": "a"}]}, "messages[0].role"),
        ({"messages": [{"content": "a"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": ["x"]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "user", "content": [{"text": "no type"}]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}, "messages[0].content[0].text"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA"}}]}]},
            "messages[0].content[0].input_audio.format",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {"filename": "a.pdf"}}]}]},
            "messages[0].content[0].file",
        ),
        (
            {"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]},
            "messages[0].content[0].type",
        ),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "tool", "content": "r"}]},
            "messages[1].tool_call_id",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": {"id": "x"}}]},
            "messages[0].tool_calls",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {}}]}]},
            "messages[0].tool_calls[0].function.name",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "weird"}]}]},
            "messages[0].tool_calls[0].type",
        ),
        ({"tools": {"type": "function"}}, "tools"),
        ({"tools": [{"type": "retrieval"}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "function": {"description": "x"}}]}, "tools[0].function.name"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]},
            "tools[0].function.parameters",
        ),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {}}}, "tool_choice.function.name"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
        ({"response_format": "json"}, "response_format"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"stop": 3}, "stop"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"max_completion_tokens": 1.5}, "max_completion_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"n": True}, "n"),
    ],
)
def test_bad_requests_name_the_param(patch, param):
    payload = {**copy.deepcopy(BASE), **patch}
    with pytest.raises(ConversionError) as info:
        chat.request_to_ir(payload)
    assert info.value.param == param
    assert str(info.value)


def test_request_not_an_object():
    with pytest.raises(ConversionError):
        chat.request_to_ir([])  # type: ignore[arg-type]


# ============================================================================ IR -> request


def test_round_trip_preserves_what_chat_expresses():
    ir = chat.request_to_ir(fixture("request_full.json"))
    # Chat has one leading system message: the two leading parts come back joined.
    ir.system = [TextPart("You are a weather bot.\n\nAnswer briefly.")]
    assert chat.request_to_ir(chat.request_from_ir(ir)) == ir


def test_round_trip_without_stream_and_with_search_model():
    payload = {
        "model": "gpt-4o-search-preview",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "news?"}],
        "web_search_options": {"search_context_size": "low"},
        "max_tokens": 100,
        "tool_choice": "auto",
    }
    ir = chat.request_to_ir(payload)
    out = chat.request_from_ir(ir)
    # tool_choice without tools is invalid for OpenAI: dropped.
    assert out == {k: v for k, v in payload.items() if k != "tool_choice"}
    ir.tool_choice = None
    assert chat.request_to_ir(out) == ir


def test_payload_round_trip_is_identity_for_canonical_requests():
    payload = fixture("request_full.json")
    payload["messages"] = payload["messages"][2:]  # no leading system messages to join
    payload["messages"][0]["content"][4]["file"] = {"file_data": "data:application/pdf;base64,JVBERi0xLjQK"}
    out = chat.request_from_ir(chat.request_to_ir(payload))
    assert out == payload


def test_request_from_ir_shapes():
    ir = Request(
        model="claude-to-chat",
        system=[TextPart("be nice", cache_control={"type": "ephemeral"}), TextPart("be brief")],
        messages=[
            Message(
                role="user",
                parts=[
                    TextPart("look", cache_control={"type": "ephemeral"}),
                    ImagePart(data="iVBORw0=", media_type="image/png"),
                    FilePart(data="JVBERi0=", media_type="application/pdf", filename="a.pdf"),
                    FilePart(data="aGVsbG8gd29ybGQ=", media_type="text/plain"),
                    FilePart(url="https://example.com/a.pdf"),
                ],
            ),
            Message(
                role="assistant",
                parts=[
                    ReasoningPart(text="think", signature="sig"),
                    ReasoningPart(encrypted="opaque", redacted=True),
                    ToolCallPart(id="toolu_1", name="screenshot", arguments=""),
                    ToolCallPart(id="srvtoolu_1", name="web_search", kind="builtin", raw={"type": "server_tool_use"}),
                    ToolCallPart(id="toolu_2", name="lookup", arguments='{"q":1}'),
                ],
            ),
            Message(
                role="tool",
                parts=[
                    ToolResultPart("toolu_1", [TextPart("here"), ImagePart(url="https://x/s.png")], is_error=False),
                    ToolResultPart("toolu_2", [TextPart("a"), TextPart("b")], is_error=True),
                ],
            ),
            Message(role="user", parts=[TextPart("next")]),
        ],
        tools=[ToolDef(name="lookup", parameters={"type": "object"}, cache_control={"type": "ephemeral"})],
        tool_choice=ToolChoice(mode="required"),
        reasoning=Reasoning(budget_tokens=2048),
        top_k=5,
        max_output_tokens=64,
        stream=True,
    )
    out = chat.request_from_ir(ir)
    messages = out["messages"]
    assert messages[0] == {"role": "system", "content": "be nice\n\nbe brief"}
    assert messages[1]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0="}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
        {"type": "text", "text": "hello world"},
        {"type": "text", "text": "[document: https://example.com/a.pdf]"},
    ]
    assert messages[2] == {
        "role": "assistant",
        "content": None,
        "reasoning_content": "think",
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "screenshot", "arguments": "{}"}},
            {"id": "toolu_2", "type": "function", "function": {"name": "lookup", "arguments": '{"q":1}'}},
        ],
    }
    # One tool message per result, then the images in a user message after the run.
    assert messages[3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "here"}
    assert messages[4] == {"role": "tool", "tool_call_id": "toolu_2", "content": "a\n\nb"}
    assert messages[5] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Attachments returned by tool call toolu_1:"},
            {"type": "image_url", "image_url": {"url": "https://x/s.png"}},
        ],
    }
    assert messages[6] == {"role": "user", "content": "next"}
    assert out["tools"] == [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    assert out["tool_choice"] == "required"
    assert out["max_tokens"] == 64
    assert out["stream_options"] == {"include_usage": True}  # the gateway always wants usage
    for absent in ("top_k", "reasoning_effort", "cache_control"):
        assert absent not in out
    assert "cache_control" not in json.dumps(out)


def test_tool_result_images_wait_for_the_whole_tool_run():
    ir = Request(
        model="m",
        messages=[
            Message(role="tool", parts=[ToolResultPart("a", [ImagePart(url="u1")])]),
            Message(role="tool", parts=[ToolResultPart("b", [TextPart("ok")])]),
        ],
    )
    roles = [m["role"] for m in chat.request_from_ir(ir)["messages"]]
    assert roles == ["tool", "tool", "user"]


def test_reasoning_models_get_max_completion_tokens_and_effort():
    for model in ("o3-mini", "gpt-5", "openai/o4-mini", "gpt-4.1-nano"):
        out = chat.request_from_ir(Request(model=model, max_output_tokens=5, reasoning=Reasoning(effort="high")))
        assert out["max_completion_tokens"] == 5 and "max_tokens" not in out
        assert out["reasoning_effort"] == "high"


def test_builtin_tools_and_dropped_list():
    web = ToolDef(
        name="web_search",
        kind="builtin",
        builtin_type="web_search",
        raw={
            "type": "web_search",
            "search_context_size": "high",
            "user_location": {"type": "approximate", "city": "Paris"},
        },
    )
    code = ToolDef(name="code_interpreter", kind="builtin", builtin_type="code_interpreter", raw={})
    fn = ToolDef(name="f")
    search = Request(model="gpt-4o-search-preview", tools=[web, code, fn], tool_choice=ToolChoice(mode="auto"))
    out = chat.request_from_ir(search)
    assert out["web_search_options"] == {
        "search_context_size": "high",
        "user_location": {"type": "approximate", "approximate": {"city": "Paris"}},
    }
    assert [t["function"]["name"] for t in out["tools"]] == ["f"]
    assert chat.dropped_builtin_tools(search) == ["code_interpreter"]

    plain = Request(model="gpt-4o", tools=[web], tool_choice=ToolChoice(mode="auto"), parallel_tool_calls=True)
    out = chat.request_from_ir(plain)
    assert "web_search_options" not in out and "tools" not in out
    assert "tool_choice" not in out and "parallel_tool_calls" not in out
    assert chat.dropped_builtin_tools(plain) == ["web_search"]


def test_custom_tools_and_named_custom_choice():
    responses_style = {"type": "custom", "name": "sql", "format": {"type": "text"}}
    ir = Request(
        model="gpt-5",
        tools=[ToolDef(name="sql", kind="custom", raw=responses_style)],
        tool_choice=ToolChoice(mode="tool", name="sql"),
    )
    out = chat.request_from_ir(ir)
    assert out["tools"] == [{"type": "custom", "custom": {"name": "sql", "format": {"type": "text"}}}]
    assert out["tool_choice"] == {"type": "custom", "custom": {"name": "sql"}}


def test_allowed_tools_choice_round_trips():
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "f"}}]},
    }
    payload = {**BASE, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": choice}
    ir = chat.request_to_ir(payload)
    assert ir.tool_choice == ToolChoice(mode="required")
    assert chat.request_from_ir(ir)["tool_choice"] == choice


def test_extra_never_overrides_mapped_fields():
    ir = Request(model="m", temperature=0.2, extra={"temperature": 1.5, "logprobs": True, "stream_options": {"x": 1}})
    out = chat.request_from_ir(ir)
    assert out["temperature"] == 0.2 and out["logprobs"] is True
    assert "stream_options" not in out  # only valid with stream


def test_mid_conversation_system_and_names():
    ir = Request(
        model="m",
        messages=[
            Message(role="user", parts=[TextPart("a")], name="bob"),
            Message(role="developer", parts=[TextPart("rule")]),
            Message(role="assistant", parts=[TextPart("x"), TextPart("y")]),
        ],
    )
    assert chat.request_from_ir(ir)["messages"] == [
        {"role": "user", "content": "a", "name": "bob"},
        {"role": "developer", "content": "rule"},
        {"role": "assistant", "content": "xy"},
    ]


# ============================================================================ responses


def test_response_to_ir_text():
    r = chat.response_to_ir(fixture("response_text.json"))
    assert r.id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT" and r.model == "gpt-4.1-2025-04-14"
    assert r.created == 1741569952
    assert r.parts == [TextPart("Hello! How can I assist you today?")]
    assert r.stop_reason == "stop" and r.refusal is None
    assert r.usage == Usage(prompt_tokens=19, completion_tokens=10)


def test_response_to_ir_tool_calls_and_cached_usage():
    r = chat.response_to_ir(fixture("response_tool_calls.json"))
    assert [p.id for p in r.parts] == ["call_abc123", "call_def456"]  # type: ignore[union-attr]
    assert r.parts[0].arguments == '{\n"location": "Boston, MA"\n}'  # type: ignore[union-attr]
    assert r.stop_reason == "tool_calls"
    assert r.usage == Usage(prompt_tokens=82, completion_tokens=17, cached_tokens=64)


def test_response_to_ir_reasoning():
    r = chat.response_to_ir(fixture("response_reasoning.json"))
    assert r.parts == [
        ReasoningPart(text="9.11 has a smaller fractional part than 9.9, so 9.9 is greater."),
        TextPart("9.9 is greater than 9.11."),
    ]
    assert r.reasoning_tokens == 100


@pytest.mark.parametrize(
    ("finish", "calls", "expected"),
    [
        ("stop", False, "stop"),
        ("length", False, "length"),
        ("tool_calls", True, "tool_calls"),
        ("content_filter", False, "content_filter"),
        ("function_call", True, "tool_calls"),
        ("stop", True, "tool_calls"),  # compatible servers that say "stop" with tool calls
        (None, False, "stop"),
    ],
)
def test_finish_reason_mapping(finish, calls, expected):
    message: dict[str, Any] = {"role": "assistant", "content": "x"}
    if calls:
        message["tool_calls"] = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    payload = {
        "id": "chatcmpl-1",
        "model": "m",
        "created": 1,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    assert chat.response_to_ir(payload).stop_reason == expected


def test_response_annotations_are_flat_in_the_ir_and_nested_in_chat():
    citation = {"url": "https://w", "title": "W", "start_index": 0, "end_index": 4}
    message = {
        "role": "assistant",
        "content": "Wiki",
        "annotations": [{"type": "url_citation", "url_citation": citation}],
    }
    payload = {
        "id": "chatcmpl-1",
        "model": "m",
        "created": 1,
        "choices": [{"message": message, "finish_reason": "stop"}],
    }
    ir = chat.response_to_ir(payload)
    assert ir.parts == [TextPart("Wiki", annotations=[{"type": "url_citation", **citation}])]
    out = chat.response_from_ir(ir, Request(model="m"))
    assert out["choices"][0]["message"]["annotations"] == message["annotations"]


def test_response_refusal_and_legacy_function_call():
    r = chat.response_to_ir(
        {
            "id": "x",
            "choices": [{"message": {"role": "assistant", "content": None, "refusal": "No."}, "finish_reason": "stop"}],
        }
    )
    assert r.refusal == "No." and r.parts == []
    r = chat.response_to_ir(
        {
            "choices": [
                {"message": {"function_call": {"name": "f", "arguments": {"a": 1}}}, "finish_reason": "function_call"}
            ]
        }
    )
    assert r.parts == [ToolCallPart(id="call_f", name="f", arguments='{"a":1}')] and r.stop_reason == "tool_calls"
    with pytest.raises(ConversionError):
        chat.response_to_ir("nope")  # type: ignore[arg-type]


def test_response_from_ir_validates_with_the_sdk():
    request = Request(model="my-alias")
    response = Response(
        id="msg_01ABC",
        model="claude-sonnet-4",
        parts=[
            ReasoningPart(text="first", signature="sig"),
            ReasoningPart(text="second"),
            TextPart("Paris ", annotations=[]),
            TextPart(
                "is sunny",
                annotations=[
                    {"type": "url_citation", "url": "https://w", "title": "W", "start_index": 0, "end_index": 2}
                ],
            ),
            ToolCallPart(id="toolu_1", name="get_weather", arguments='{"city":"Paris"}'),
            ToolCallPart(id="toolu_2", name="sql", arguments="SELECT 1", kind="custom"),
        ],
        stop_reason="tool_calls",
        usage=Usage(
            prompt_tokens=100, completion_tokens=20, cached_tokens=30, cache_write_tokens=10, cache_write_1h_tokens=5
        ),
        reasoning_tokens=7,
        created=1700000000,
    )
    out = chat.response_from_ir(response, request)
    parsed = ChatCompletion.model_validate(out)
    assert parsed.id == "chatcmpl-msg_01ABC"
    message = out["choices"][0]["message"]
    assert message["content"] == "Paris is sunny"
    assert message["reasoning_content"] == "first\n\nsecond"
    assert message["annotations"] == [
        {"type": "url_citation", "url_citation": {"url": "https://w", "title": "W", "start_index": 6, "end_index": 8}}
    ]
    assert [c["type"] for c in message["tool_calls"]] == ["function", "custom"]
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["choices"][0]["logprobs"] is None
    assert out["usage"]["total_tokens"] == 120
    assert out["usage"]["prompt_tokens_details"] == {"cached_tokens": 30, "audio_tokens": 0, "cache_write_tokens": 15}
    assert out["usage"]["completion_tokens_details"]["reasoning_tokens"] == 7
    assert parsed.usage is not None and parsed.usage.prompt_tokens_details.cached_tokens == 30


def test_response_from_ir_content_null_only_with_calls():
    request = Request(model="m")
    calls_only = Response(id="chatcmpl-1", model="m", parts=[ToolCallPart(id="c", name="f", arguments="{}")])
    out = chat.response_from_ir(calls_only, request)
    assert out["id"] == "chatcmpl-1" and out["choices"][0]["message"]["content"] is None
    empty = chat.response_from_ir(Response(id="r", model="", stop_reason="refusal"), request)
    assert empty["choices"][0]["message"]["content"] == ""
    assert empty["choices"][0]["finish_reason"] == "content_filter"
    assert empty["model"] == "m"
    ChatCompletion.model_validate(out)
    ChatCompletion.model_validate(empty)


@pytest.mark.parametrize("name", ["response_text.json", "response_tool_calls.json", "response_reasoning.json"])
def test_response_round_trip(name):
    ir = chat.response_to_ir(fixture(name))
    again = chat.response_to_ir(chat.response_from_ir(ir, Request(model="m")))
    ir.id = chat_id(ir.id)  # Chat ids carry the chatcmpl- prefix
    assert again == ir
