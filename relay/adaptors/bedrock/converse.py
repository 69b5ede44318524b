"""IR <-> Bedrock Converse JSON. Pure: no I/O.

Request: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
Content blocks: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ContentBlock.html
(ConverseStream events are read in relay.adaptors.bedrock.stream.)

Blob members (`bytes` of images and documents) travel base64-encoded in the JSON protocol.
"""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from ... import ir
from ...converters.messages_stream import is_structured_tool
from ...converters.messages_upstream import EFFORT_BUDGET, structured_tool_name

# Structured output has no Converse parameter every model takes: like the Anthropic converter,
# it is a tool the model is forced to call, whose input is the answer; its reserved name is
# STRUCTURED_TOOL_PREFIX + the format's name ("__json_response" when unnamed).

_STOP: dict[str, ir.StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_DocumentBlock.html
_DOC_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
_DATA_URL = re.compile(r"^data:(?P<mime>[^;,]*)(?P<params>(;[^;,]*)*),(?P<data>.*)$", re.S)
# Document names may hold only alphanumerics, single spaces, hyphens, parentheses, brackets.
_DOC_NAME_BAD = re.compile(r"[^A-Za-z0-9 \-()\[\]]+")


# --------------------------------------------------------------------------------------- request


def request_from_ir(request: ir.Request, *, claude: bool = False) -> dict[str, Any]:
    """The Converse body for `request` (the model goes in the URL, streaming is the endpoint).
    `claude`: the model is Claude (e.g. behind an application inference profile), which takes
    thinking and top_k as additional fields and its own signed reasoning back in the history."""
    body: dict[str, Any] = {}
    messages, has_tool_blocks, history_tools = _messages(request.messages, claude=claude)
    body["messages"] = messages
    system = _system(request.system)
    if system:
        body["system"] = system
    tool_config = _tool_config(request, has_tool_blocks, history_tools)
    if tool_config:
        body["toolConfig"] = tool_config
    forced = tool_config is not None and any(k in tool_config.get("toolChoice", {}) for k in ("any", "tool"))
    thinking = _thinking(request, forced) if claude else None
    inference: dict[str, Any] = {}
    if request.max_output_tokens is not None:
        inference["maxTokens"] = request.max_output_tokens
    if request.temperature is not None and thinking is None:
        inference["temperature"] = request.temperature
    if request.top_p is not None and thinking is None:
        inference["topP"] = request.top_p
    if request.stop:
        inference["stopSequences"] = list(request.stop)
    if inference:
        body["inferenceConfig"] = inference
    additional: dict[str, Any] = {}
    if claude and request.top_k is not None and thinking is None:
        additional["top_k"] = request.top_k
    if thinking is not None:
        additional["thinking"] = thinking
    if additional:
        body["additionalModelRequestFields"] = additional
    return body


def _thinking(request: ir.Request, forced_tool: bool) -> dict[str, Any] | None:
    """Claude's thinking, with the Anthropic converter's rules (relay.converters.messages_upstream):
    https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-extended-thinking.html
    budget >= 1024 and below maxTokens; not with a forced tool; sampling parameters dropped."""
    r = request.reasoning
    if r is None or r.enabled is False or (r.enabled is None and r.effort in (None, "none", "minimal")):
        return None
    budget = r.budget_tokens if r.budget_tokens is not None else EFFORT_BUDGET.get(r.effort or "", 4096)
    if request.max_output_tokens is not None:
        budget = min(budget, request.max_output_tokens - 1)
    if budget < 1024 or forced_tool:
        return None
    return {"type": "enabled", "budget_tokens": budget}


def _system(parts: list[ir.TextPart]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts:
        if part.text:
            out.append({"text": part.text})
        if part.cache_control is not None:
            out.append(_CACHE_POINT)
    return out


# A prompt-cache checkpoint after the preceding blocks (Claude and Nova):
# https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html
_CACHE_POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}


def _messages(messages: list[ir.Message], *, claude: bool) -> tuple[list[dict[str, Any]], bool, set[str]]:
    turns: list[dict[str, Any]] = []
    has_tool_blocks = False
    names: set[str] = set()
    for message in messages:
        blocks: list[dict[str, Any]] = []
        role = "assistant" if message.role == "assistant" else "user"
        for part in message.parts:
            if isinstance(part, ir.ToolCallPart):
                has_tool_blocks = True
                names.add(part.name)
            elif isinstance(part, ir.ToolResultPart):
                has_tool_blocks = True
            if message.role in ("system", "developer") and not isinstance(part, ir.TextPart):
                continue  # mid-conversation instructions: only their text is kept
            blocks.extend(_content(part, reasoning=claude and role == "assistant"))
        if not blocks:
            continue  # Bedrock rejects empty content lists
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # turns must alternate user / assistant
        else:
            turns.append({"role": role, "content": blocks})
    return turns, has_tool_blocks, names


def _content(part: ir.Part, *, reasoning: bool = False) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(part, ir.TextPart):
        if part.text:  # a blank text block is a ValidationException
            out.append({"text": part.text})
    elif isinstance(part, ir.ImagePart):
        out.append(_image(part))
    elif isinstance(part, ir.FilePart):
        out.append(_document(part))
    elif isinstance(part, ir.AudioPart):
        raise ir.ConversionError("Bedrock Converse does not take audio input", "messages")
    elif isinstance(part, ir.ReasoningPart):
        # Only Claude takes reasoning back, and only signed (it checks the signature); other
        # models and other vendors' unsigned reasoning: dropped.
        if not reasoning:
            return out
        if part.redacted and part.encrypted:
            out.append({"reasoningContent": {"redactedContent": part.encrypted}})
        elif part.signature:
            out.append({"reasoningContent": {"reasoningText": {"text": part.text, "signature": part.signature}}})
    elif isinstance(part, ir.ToolCallPart):
        out.append({"toolUse": {"toolUseId": part.id, "name": part.name, "input": _parse_args(part.arguments)}})
    elif isinstance(part, ir.ToolResultPart):
        # cachePoint blocks are not allowed inside a tool result's content.
        content = [b for item in part.content for b in _content(item) if "cachePoint" not in b]
        result: dict[str, Any] = {"toolUseId": part.call_id, "content": content or [{"text": "(empty)"}]}
        if part.is_error:
            result["status"] = "error"
        out.append({"toolResult": result})
    if out and getattr(part, "cache_control", None) is not None:
        out.append(_CACHE_POINT)
    return out


def _parse_args(arguments: str) -> dict[str, Any]:
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        return {}  # a model's malformed arguments must not fail the next turn
    return value if isinstance(value, dict) else {}


def _inline(url: str | None, data: str | None, media_type: str | None, what: str) -> tuple[str, str]:
    """(media type, base64) of an inline image or document."""
    if data:
        return (media_type or "").lower(), data
    if url and url.startswith("data:"):
        match = _DATA_URL.match(url)
        if match is None:
            raise ir.ConversionError("malformed data URL", "messages")
        raw = match.group("data")
        if ";base64" not in match.group("params"):
            raw = base64.b64encode(unquote_to_bytes(raw)).decode()
        return (match.group("mime") or media_type or "").lower(), raw
    raise ir.ConversionError(f"Bedrock needs inline {what}s (base64 data), not URLs or file ids", "messages")


def _image(part: ir.ImagePart) -> dict[str, Any]:
    mime, data = _inline(part.url, part.data, part.media_type, "image")
    fmt = _IMAGE_FORMATS.get(mime)
    if fmt is None:
        raise ir.ConversionError(f"Bedrock takes png, jpeg, gif or webp images, not {mime or 'unknown'}", "messages")
    return {"image": {"format": fmt, "source": {"bytes": data}}}


def _document(part: ir.FilePart) -> dict[str, Any]:
    mime, data = _inline(part.url, part.data, part.media_type, "document")
    fmt = _DOC_FORMATS.get(mime.split(";")[0])
    if fmt is None:
        raise ir.ConversionError(f"Bedrock does not take {mime or 'untyped'} documents", "messages")
    stem = (part.filename or "").rsplit(".", 1)[0]
    name = " ".join(_DOC_NAME_BAD.sub("-", stem).split())[:200] or f"document-{uuid.uuid4().hex[:8]}"
    return {"document": {"format": fmt, "name": name, "source": {"bytes": data}}}


def _tool_config(request: ir.Request, has_tool_blocks: bool, history_tools: set[str]) -> dict[str, Any] | None:
    tools: list[dict[str, Any]] = []
    for tool in request.tools:
        if tool.kind != "function":
            raise ir.ConversionError(f"Bedrock Converse only takes function tools, not {tool.builtin_type or tool.kind}", "tools")
        spec: dict[str, Any] = {"name": tool.name, "inputSchema": {"json": tool.parameters or {"type": "object", "properties": {}}}}
        if tool.description:
            spec["description"] = tool.description
        tools.append({"toolSpec": spec})
        if tool.cache_control is not None:
            tools.append(_CACHE_POINT)
    choice = request.tool_choice
    result: dict[str, Any] = {}
    fmt = request.response_format
    if fmt is not None and fmt.type in ("json_schema", "json_object"):
        # The same choices as the Anthropic converter (relay.converters.messages_upstream).
        name = structured_tool_name(fmt.name)
        schema = fmt.schema if fmt.type == "json_schema" and isinstance(fmt.schema, dict) else {"type": "object"}
        others = any("toolSpec" in t for t in tools)
        description = fmt.description or "Give your final answer by calling this tool once; its input is the JSON answer."
        tools.append({"toolSpec": {"name": name, "description": description, "inputSchema": {"json": schema}}})
        mode = choice.mode if choice is not None else "auto"
        if others and mode in ("auto", "required"):
            result["toolChoice"] = {"any": {}}  # call a real tool, or answer through the answer tool
        elif others and mode == "tool" and choice is not None and choice.name:
            result["toolChoice"] = {"tool": {"name": choice.name}}
        else:
            result["toolChoice"] = {"tool": {"name": name}}  # no other tool may be called
        return {"tools": tools, **result}
    if not tools and has_tool_blocks:
        # Converse refuses toolUse / toolResult blocks without a toolConfig; a caller that
        # stopped offering tools still has them in its history: declare those names.
        tools = [{"toolSpec": {"name": n, "inputSchema": {"json": {"type": "object", "properties": {}}}}} for n in sorted(history_tools)]
        if not tools:
            tools = [{"toolSpec": {"name": "unused_tool", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]
        return {"tools": tools}
    if not tools:
        return None
    if choice is not None and choice.mode == "none":
        # Converse has no "none": leave the tools out unless the history needs them declared.
        return {"tools": tools} if has_tool_blocks else None
    if choice is not None and choice.mode == "required":
        result["toolChoice"] = {"any": {}}
    elif choice is not None and choice.mode == "tool" and choice.name:
        result["toolChoice"] = {"tool": {"name": choice.name}}
    elif choice is not None and choice.mode == "auto":
        result["toolChoice"] = {"auto": {}}
    return {"tools": tools, **result}


# --------------------------------------------------------------------------------------- response


def usage_to_ir(usage: Any) -> ir.Usage:
    """Converse usage: inputTokens excludes cache reads and writes (Anthropic's convention);
    the IR's prompt_tokens includes them."""
    if not isinstance(usage, dict):
        return ir.Usage()
    read = _int(usage.get("cacheReadInputTokens"))
    write = _int(usage.get("cacheWriteInputTokens"))
    return ir.Usage(
        prompt_tokens=_int(usage.get("inputTokens")) + read + write,
        completion_tokens=_int(usage.get("outputTokens")),
        cached_tokens=read,
        cache_write_tokens=write,
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def stop_reason(reason: Any, *, real_tool_calls: bool) -> ir.StopReason:
    mapped = _STOP.get(reason, "stop") if isinstance(reason, str) else "stop"
    if mapped == "tool_calls" and not real_tool_calls:
        return "stop"  # only the JSON-answer tool was called: for the caller, a plain answer
    return mapped


def response_to_ir(payload: Any) -> ir.Response:
    if not isinstance(payload, dict):
        raise ir.ConversionError("the Bedrock Converse response is not a JSON object")
    output = payload.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    parts: list[ir.Part] = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            parts.append(ir.TextPart(block["text"]))
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            arguments = orjson.dumps(use.get("input") if use.get("input") is not None else {}).decode()
            if is_structured_tool(use.get("name")):
                parts.append(ir.TextPart(arguments))
            else:
                parts.append(ir.ToolCallPart(id=str(use.get("toolUseId") or ""), name=str(use.get("name") or ""), arguments=arguments))
        elif isinstance(block.get("reasoningContent"), dict):
            reasoning = block["reasoningContent"]
            text = reasoning.get("reasoningText")
            if isinstance(text, dict):
                parts.append(ir.ReasoningPart(text=str(text.get("text") or ""), signature=text.get("signature") or None))
            elif isinstance(reasoning.get("redactedContent"), str):
                parts.append(ir.ReasoningPart(encrypted=reasoning["redactedContent"], redacted=True))
    real_calls = any(isinstance(p, ir.ToolCallPart) for p in parts)
    return ir.Response(
        id=new_id(),
        model="",  # Converse answers do not name the model; the relay knows it
        parts=parts,
        stop_reason=stop_reason(payload.get("stopReason"), real_tool_calls=real_calls),
        usage=usage_to_ir(payload.get("usage")),
    )


def new_id() -> str:
    return f"msg_bdrk_{uuid.uuid4().hex[:24]}"
