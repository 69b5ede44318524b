"""Chat Completions responses (non-stream) <-> IR; see relay/converters/chat.py for requests.

https://platform.openai.com/docs/api-reference/chat/object
"""

from __future__ import annotations

import re
import time
from typing import Any

from relay.converters.chat_stream import (
    chat_id,
    dumps_arguments,
    finish_from_ir,
    finish_to_ir,
    reasoning_text,
    usage_from_ir,
    usage_to_ir,
)
from relay.ir import (
    ConversionError,
    ReasoningPart,
    Request,
    Response,
    TextPart,
    ToolCallPart,
)


def response_to_ir(payload: dict[str, Any]) -> Response:
    """A `chat.completion` -> IR. Only choice 0 is read (n>1 is passed through, not converted)."""
    if not isinstance(payload, dict):
        raise ConversionError("the upstream response must be a JSON object")
    response = Response(
        id=str(payload.get("id") or ""),
        model=str(payload.get("model") or ""),
        created=payload["created"] if isinstance(payload.get("created"), int) else 0,
    )
    usage = payload.get("usage")
    if isinstance(usage, dict):
        response.usage, response.reasoning_tokens = usage_to_ir(usage)
    choices = payload.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}

    reasoning = reasoning_text(message)
    if reasoning:
        response.parts.append(ReasoningPart(text=reasoning))
    content = message.get("content")
    raw_annotations = message.get("annotations")
    annotations = [_flat_annotation(a) for a in raw_annotations or [] if isinstance(a, dict)]
    if isinstance(content, str) and (content or annotations):
        response.parts.append(TextPart(content, annotations=annotations))
    elif isinstance(content, list):  # some compatible servers answer with parts
        text = "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        if text:
            response.parts.append(TextPart(text, annotations=annotations))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        response.refusal = refusal
    calls = message.get("tool_calls")
    for k, call in enumerate(calls if isinstance(calls, list) else []):
        try:
            response.parts.append(read_tool_call(call, f"choices[0].message.tool_calls[{k}]"))
        except ConversionError:
            continue  # a malformed call from upstream is skipped rather than failing the answer
    function_call = message.get("function_call")
    if isinstance(function_call, dict) and isinstance(function_call.get("name"), str):
        arguments = dumps_arguments(function_call.get("arguments"))
        response.parts.append(
            ToolCallPart(id=f"call_{function_call['name']}", name=function_call["name"], arguments=arguments)
        )
    had_calls = any(isinstance(p, ToolCallPart) for p in response.parts)
    response.stop_reason = finish_to_ir(choice.get("finish_reason"), had_calls)
    if isinstance(choice.get("stop_reason"), str):  # vLLM: the matched stop string
        response.stop_sequence = choice["stop_reason"]
    return response


def response_from_ir(response: Response, request: Request) -> dict[str, Any]:
    text_parts = [p for p in response.parts if isinstance(p, TextPart)]
    text = "".join(p.text for p in text_parts)
    annotations: list[dict[str, Any]] = []
    offset = 0
    for part in text_parts:
        annotations.extend(_chat_annotation(a, offset) for a in part.annotations)
        offset += len(part.text)
    calls = []
    for part in response.parts:
        if isinstance(part, ToolCallPart) and part.kind == "custom":
            calls.append({"id": part.id, "type": "custom", "custom": {"name": part.name, "input": part.arguments}})
        elif isinstance(part, ToolCallPart) and part.kind == "function":
            function = {"name": part.name, "arguments": part.arguments or "{}"}
            calls.append({"id": part.id, "type": "function", "function": function})
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not (calls or response.refusal) else None,
        "refusal": response.refusal,
        "annotations": annotations,
    }
    reasoning = "\n\n".join(p.text for p in response.parts if isinstance(p, ReasoningPart) and p.text)
    if reasoning:
        message[request.reasoning_format or "reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = calls
    return {
        "id": chat_id(response.id),
        "object": "chat.completion",
        "created": response.created or int(time.time()),
        "model": response.model or request.model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_from_ir(response.stop_reason)}
        ],
        "usage": usage_from_ir(response.usage, response.reasoning_tokens),
    }


def _flat_annotation(annotation: dict[str, Any]) -> dict[str, Any]:
    """Chat's nested url_citation in the IR's shared shape, the flat one of Responses
    ({"type":"url_citation","url","title","start_index","end_index"}), so a Responses encoder
    can pass IR annotations through; `_chat_annotation` nests them again."""
    inner = annotation.get("url_citation")
    if annotation.get("type") != "url_citation" or not isinstance(inner, dict):
        return annotation
    return {"type": "url_citation", **inner}


def _chat_annotation(annotation: dict[str, Any], offset: int) -> dict[str, Any]:
    """An annotation in Chat's nested shape, its indexes shifted to the joined content. Accepts
    the Responses flat shape ({"type":"url_citation","url",...}) too."""
    if annotation.get("type") != "url_citation":
        return annotation
    inner = annotation.get("url_citation") if isinstance(annotation.get("url_citation"), dict) else annotation
    citation = {k: inner.get(k) for k in ("url", "title") if inner.get(k) is not None}
    for key in ("start_index", "end_index"):
        if isinstance(inner.get(key), int):
            citation[key] = inner[key] + offset
    return {"type": "url_citation", "url_citation": citation}


def read_tool_call(call: Any, path: str) -> ToolCallPart:
    if not isinstance(call, dict):
        raise ConversionError("each tool call must be an object", path)
    kind = call.get("type", "function")
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        call_id = "call_" + re.sub(r"\W+", "_", path).strip("_")  # lenient: OpenAI always sends one
    if kind == "custom":
        custom = call.get("custom")
        name = custom.get("name") if isinstance(custom, dict) else None
        if not isinstance(name, str) or not name:
            raise ConversionError("custom tool calls need a name", f"{path}.custom.name")
        return ToolCallPart(id=call_id, name=name, arguments=dumps_arguments(custom.get("input")), kind="custom")
    if kind != "function":
        raise ConversionError(f"unknown tool call type {kind!r}", f"{path}.type")
    function = call.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        raise ConversionError("tool calls need a function name", f"{path}.function.name")
    return ToolCallPart(id=call_id, name=name, arguments=dumps_arguments(function.get("arguments")))
