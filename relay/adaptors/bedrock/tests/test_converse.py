"""IR <-> Converse JSON, both ways, and ConverseStream events -> IR."""

from __future__ import annotations

import pytest

from relay import ir
from relay.adaptors.bedrock import converse
from relay.adaptors.bedrock.stream import BedrockStreamDecoder

from . import helpers as h

PNG = "iVBORw0KGgo="
WEATHER = ir.ToolDef(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def user(*parts: ir.Part) -> ir.Message:
    return ir.Message(role="user", parts=list(parts))


def test_request_basics() -> None:
    request = ir.Request(
        model="amazon.nova-pro-v1:0",
        system=[ir.TextPart("Be brief."), ir.TextPart("Cache me.", cache_control={"type": "ephemeral"})],
        messages=[
            user(ir.TextPart("Hi"), ir.TextPart("")),
            ir.Message(role="assistant", parts=[ir.TextPart("Hello!")]),
            ir.Message(role="developer", parts=[ir.TextPart("Answer in French.")]),
            user(ir.TextPart("What is this?"), ir.ImagePart(url=f"data:image/png;base64,{PNG}")),
        ],
        max_output_tokens=300, temperature=0.2, top_p=0.9, top_k=40, stop=["END"],
        reasoning=ir.Reasoning(effort="high"), seed=7, user="u-1",
    )
    body = converse.request_from_ir(request)
    assert body == {
        "messages": [
            {"role": "user", "content": [{"text": "Hi"}]},
            {"role": "assistant", "content": [{"text": "Hello!"}]},
            # a mid-conversation developer message joins the next user turn (turns alternate)
            {"role": "user", "content": [
                {"text": "Answer in French."}, {"text": "What is this?"},
                {"image": {"format": "png", "source": {"bytes": PNG}}},
            ]},
        ],
        "system": [{"text": "Be brief."}, {"text": "Cache me."}, {"cachePoint": {"type": "default"}}],
        "inferenceConfig": {"maxTokens": 300, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
    }
    # Claude (behind an application inference profile): top_k, and thinking when the budget fits
    claude = converse.request_from_ir(request, claude=True)
    assert claude["additionalModelRequestFields"] == {"top_k": 40}  # maxTokens 300: no room to think
    request.max_output_tokens = 20000
    claude = converse.request_from_ir(request, claude=True)
    assert claude["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 16000}}
    assert claude["inferenceConfig"] == {"maxTokens": 20000, "stopSequences": ["END"]}  # no sampling with thinking
    request.tool_choice, request.tools = ir.ToolChoice(mode="required"), [WEATHER]
    forced = converse.request_from_ir(request, claude=True)  # a forced tool: no thinking, sampling back
    assert forced["additionalModelRequestFields"] == {"top_k": 40} and forced["inferenceConfig"]["temperature"] == 0.2


def test_images_and_documents_must_be_inline() -> None:
    with pytest.raises(ir.ConversionError, match="Bedrock needs inline images"):
        converse.request_from_ir(ir.Request(model="m", messages=[user(ir.ImagePart(url="https://example.com/cat.png"))]))
    with pytest.raises(ir.ConversionError, match="png, jpeg, gif or webp"):
        converse.request_from_ir(ir.Request(model="m", messages=[user(ir.ImagePart(data=PNG, media_type="image/tiff"))]))
    with pytest.raises(ir.ConversionError, match="audio"):
        converse.request_from_ir(ir.Request(model="m", messages=[user(ir.AudioPart(data="AAA", format="wav"))]))
    body = converse.request_from_ir(ir.Request(model="m", messages=[
        user(ir.FilePart(data="JVBERi0=", media_type="application/pdf", filename="Q3 report (final).v2.pdf")),
        user(ir.ImagePart(url="data:image/jpeg,%FF%D8")),  # a data URL without ;base64
    ]))
    doc, image = body["messages"][0]["content"]
    assert doc == {"document": {"format": "pdf", "name": "Q3 report (final)-v2", "source": {"bytes": "JVBERi0="}}}
    assert image == {"image": {"format": "jpeg", "source": {"bytes": "/9g="}}}


def test_tool_use_round_trip() -> None:
    request = ir.Request(
        model="mistral.mistral-large-2407-v1:0",
        tools=[WEATHER],
        tool_choice=ir.ToolChoice(mode="required"),
        messages=[
            user(ir.TextPart("Weather in Paris?")),
            ir.Message(role="assistant", parts=[
                ir.ReasoningPart(text="other vendor's thoughts"),  # unsigned: dropped
                ir.ToolCallPart(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
                ir.ToolCallPart(id="call_2", name="get_weather", arguments="{not json"),
            ]),
            ir.Message(role="tool", parts=[
                ir.ToolResultPart(call_id="call_1", content=[ir.TextPart('{"temp": 21}')]),
                ir.ToolResultPart(call_id="call_2", content=[], is_error=True),
            ]),
        ],
    )
    body = converse.request_from_ir(request)
    assert body["messages"][1:] == [
        {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": "call_2", "name": "get_weather", "input": {}}},
        ]},
        {"role": "user", "content": [
            {"toolResult": {"toolUseId": "call_1", "content": [{"text": '{"temp": 21}'}]}},
            {"toolResult": {"toolUseId": "call_2", "content": [{"text": "(empty)"}], "status": "error"}},
        ]},
    ]
    assert body["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": WEATHER.parameters}, "description": "Weather for a city"}}],
        "toolChoice": {"any": {}},
    }
    # ... and the answer back
    answer = converse.response_to_ir(h.load("converse_tool_use.json"))
    assert answer.stop_reason == "tool_calls"
    assert answer.parts[1] == ir.ToolCallPart(id="tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", name="get_weather", arguments='{"city":"Paris","unit":"celsius"}')
    assert answer.usage == ir.Usage(prompt_tokens=410, completion_tokens=62)


def test_tool_choice_variants() -> None:
    base = ir.Request(model="m", messages=[user(ir.TextPart("x"))], tools=[WEATHER])
    for mode, expected in (("auto", {"auto": {}}), ("tool", {"tool": {"name": "get_weather"}})):
        base.tool_choice = ir.ToolChoice(mode=mode, name="get_weather")  # type: ignore[arg-type]
        assert converse.request_from_ir(base)["toolConfig"]["toolChoice"] == expected
    base.tool_choice = ir.ToolChoice(mode="none")
    assert "toolConfig" not in converse.request_from_ir(base)  # Converse has no "none": no tools
    with pytest.raises(ir.ConversionError, match="function tools"):
        converse.request_from_ir(ir.Request(model="m", messages=[user(ir.TextPart("x"))],
                                            tools=[ir.ToolDef(name="web_search", kind="builtin", builtin_type="web_search")]))


def test_tool_history_without_tools_declares_them() -> None:
    # Converse refuses toolUse/toolResult blocks without a toolConfig.
    request = ir.Request(model="m", messages=[
        user(ir.TextPart("x")),
        ir.Message(role="assistant", parts=[ir.ToolCallPart(id="c", name="lookup", arguments="{}")]),
        ir.Message(role="tool", parts=[ir.ToolResultPart(call_id="c", content=[ir.TextPart("ok")])]),
    ])
    assert converse.request_from_ir(request)["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]
    }


def test_structured_output_is_a_forced_tool() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "temperature": {"type": "number"}}}
    request = ir.Request(model="m", messages=[user(ir.TextPart("Paris weather as JSON"))],
                         response_format=ir.ResponseFormat(type="json_schema", schema=schema))
    config = converse.request_from_ir(request)["toolConfig"]
    assert config["toolChoice"] == {"tool": {"name": "__json_response"}}
    assert config["tools"][0]["toolSpec"]["name"] == "__json_response"
    assert config["tools"][0]["toolSpec"]["inputSchema"] == {"json": schema}
    # with real tools as well: the model must call one of them or answer through the JSON tool
    request.tools = [WEATHER]
    config = converse.request_from_ir(request)["toolConfig"]
    assert config["toolChoice"] == {"any": {}} and len(config["tools"]) == 2
    # the answer comes back as text, and a plain stop
    answer = converse.response_to_ir(h.load("converse_structured.json"))
    assert answer.parts == [ir.TextPart('{"city":"Paris","temperature":21.5}')]
    assert answer.stop_reason == "stop"


def test_reasoning_round_trip() -> None:
    answer = converse.response_to_ir(h.load("converse_reasoning.json"))
    assert answer.parts == [
        ir.ReasoningPart(text="The user asks for 6 times 7. That is 42.", signature="EqoBCkgIARABGAIiQHk2c2lnbmF0dXJl"),
        ir.ReasoningPart(encrypted="RXJlZGFjdGVkLXRoaW5raW5n", redacted=True),
        ir.TextPart("42"),
    ]
    # cache writes count in the prompt (IR convention)
    assert answer.usage == ir.Usage(prompt_tokens=1240, completion_tokens=90, cache_write_tokens=1200)
    history = ir.Request(model="m", messages=[
        user(ir.TextPart("6*7?")), ir.Message(role="assistant", parts=answer.parts), user(ir.TextPart("thanks")),
    ])
    assert converse.request_from_ir(history)["messages"][1]["content"] == [{"text": "42"}]  # not Claude: dropped
    back = converse.request_from_ir(history, claude=True)
    assert back["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "The user asks for 6 times 7. That is 42.", "signature": "EqoBCkgIARABGAIiQHk2c2lnbmF0dXJl"}}},
        {"reasoningContent": {"redactedContent": "RXJlZGFjdGVkLXRoaW5raW5n"}},
        {"text": "42"},
    ]


@pytest.mark.parametrize(("reason", "expected"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("content_filtered", "content_filter"), ("guardrail_intervened", "content_filter"), ("something_new", "stop"),
])
def test_stop_reasons(reason: str, expected: str) -> None:
    assert converse.stop_reason(reason, real_tool_calls=True) == expected


def test_response_text_and_cache_usage() -> None:
    answer = converse.response_to_ir(h.load("converse_text.json"))
    assert answer.parts == [ir.TextPart("Hello! How can I help you today?")]
    assert answer.usage == ir.Usage(prompt_tokens=1512, completion_tokens=9, cached_tokens=1500)
    with pytest.raises(ir.ConversionError):
        converse.response_to_ir([])


def decode(data: bytes, *, byte_by_byte: bool) -> list[ir.StreamEvent]:
    decoder = BedrockStreamDecoder("amazon.nova-pro-v1:0")
    events: list[ir.StreamEvent] = []
    step = 1 if byte_by_byte else max(len(data), 1)
    for i in range(0, len(data), step):
        events += decoder.feed(data[i : i + step])
    events += decoder.close()
    for event in events:
        if isinstance(event, ir.StreamStart):
            event.id = "x"  # generated
    return events


def test_stream_text_and_tool_call() -> None:
    data = h.converse_stream(h.load("converse_stream_tool.json"))
    events = decode(data, byte_by_byte=True)
    assert events == decode(data, byte_by_byte=False)
    assert events == [
        ir.StreamStart(id="x", model="amazon.nova-pro-v1:0"),
        ir.PartStart(0, "text"),
        ir.TextDelta(0, "Let me"),
        ir.TextDelta(0, " check."),
        ir.PartStop(0),
        ir.PartStart(1, "tool_call", tool_call_id="tooluse_abc123", tool_name="get_weather"),
        ir.ToolArgsDelta(1, '{"city": '),
        ir.ToolArgsDelta(1, '"Paris"}'),
        ir.PartStop(1),
        ir.StreamEnd(stop_reason="tool_calls", usage=ir.Usage(prompt_tokens=380, completion_tokens=45)),
    ]


def test_stream_reasoning_then_text() -> None:
    events = decode(h.converse_stream(h.load("converse_stream_reasoning.json")), byte_by_byte=True)
    assert events[1:] == [
        ir.PartStart(0, "reasoning"),
        ir.ReasoningDelta(0, text="Six times seven"),
        ir.ReasoningDelta(0, text=" is 42."),
        ir.ReasoningDelta(0, signature="EqoBCkgIARABGAIiQHk2c2ln"),
        ir.PartStop(0),
        ir.PartStart(1, "text"),
        ir.TextDelta(1, "42"),
        ir.PartStop(1),
        ir.StreamEnd(stop_reason="length", usage=ir.Usage(prompt_tokens=1020, completion_tokens=64, cached_tokens=1000)),
    ]


def test_stream_structured_output_tool_becomes_text() -> None:
    events = [
        ["messageStart", {"role": "assistant"}],
        ["contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t1", "name": "__json_response"}}}],
        ["contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"a":'}}}],
        ["contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": "1}"}}}],
        ["contentBlockStop", {"contentBlockIndex": 0}],
        ["messageStop", {"stopReason": "tool_use"}],
    ]
    got = decode(h.converse_stream(events), byte_by_byte=False)
    # no metadata event (a proxy dropped it): the stream still ends after messageStop
    assert got[1:] == [
        ir.PartStart(0, "text"), ir.TextDelta(0, '{"a":'), ir.TextDelta(0, "1}"), ir.PartStop(0),
        ir.StreamEnd(stop_reason="stop", usage=None),
    ]


def test_stream_ending_early_is_an_error() -> None:
    events = h.load("converse_stream_tool.json")[:5]
    got = decode(h.converse_stream(events), byte_by_byte=False)
    assert isinstance(got[-1], ir.StreamError) and "ended early" in got[-1].message
    data = h.converse_stream(h.load("converse_stream_tool.json"))
    got = decode(data[:-3], byte_by_byte=False)  # cut inside the last frame
    assert isinstance(got[-1], ir.StreamError) and "middle of an event" in got[-1].message
    assert decode(b"", byte_by_byte=False) == [ir.StreamError("the upstream stream ended without any event")]
