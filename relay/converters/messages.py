"""Anthropic Messages <-> IR (requests and non-stream responses; streams in messages_stream).

Reference: https://docs.anthropic.com/en/api/messages. Callers include Claude Code, which sends
`thinking: {"type": "adaptive"}`, `output_config`, `context_management`, cache_control on
system blocks, large tool lists and `role: "system"` messages in the middle of `messages`
(https://github.com/Laisky/one-api/issues/350): all are accepted.

The upstream direction (request_from_ir) lives in messages_upstream, streams in
messages_stream; both are re-exported here so the module has the converter interface of
relay.converters. `fold_system_messages` is for the pass-through path (Messages caller,
Anthropic upstream): Anthropic itself rejects `role: "system"` inside `messages`.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from relay import ir
from relay.converters.messages_stream import (
    STRUCTURED_TOOL_PREFIX,
    StreamDecoder,
    StreamEncoder,
    is_structured_tool,
    stop_from_ir,
    stop_to_ir,
    usage_to_ir,
    usage_wire,
)
from relay.converters.messages_upstream import (
    DATE_SUFFIX,
    DEFAULT_MAX_TOKENS,
    SERVER_BLOCK_TYPES,
    fold_system_messages,
    is_anthropic_server_item,
    request_from_ir,
    structured_tool_name,
    tool_input,
)

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "STRUCTURED_TOOL_PREFIX",
    "StreamDecoder",
    "StreamEncoder",
    "fold_system_messages",
    "request_from_ir",
    "request_to_ir",
    "response_from_ir",
    "response_to_ir",
    "structured_tool_name",
]


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


_KNOWN_KEYS = frozenset({
    "model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "stream",
    "metadata", "tools", "tool_choice", "thinking",
})



# ======================================================================================= request in


def _fail(message: str, param: str) -> ir.ConversionError:
    return ir.ConversionError(f"{param}: {message}", param)


def _obj(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail("expected an object", param)
    return value


def _str(block: dict[str, Any], key: str, param: str, *, required: bool = True) -> str | None:
    value = block.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise _fail("expected a string" if key in block else "field required", f"{param}.{key}")
    return value


def _cache(block: dict[str, Any], param: str) -> ir.CacheControl | None:
    value = block.get("cache_control")
    if value is None:
        return None
    return dict(_obj(value, f"{param}.cache_control"))


def _number(body: dict[str, Any], key: str, kind: type | tuple[type, ...] = (int, float)) -> Any:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
        raise _fail("expected a number" if kind is not int else "expected an integer", key)
    return value


def _image(block: dict[str, Any], param: str) -> ir.ImagePart | ir.FilePart:
    source = _obj(block.get("source"), f"{param}.source")
    kind = source.get("type")
    cache = _cache(block, param)
    if kind == "base64":
        return ir.ImagePart(data=_str(source, "data", f"{param}.source"),
                            media_type=_str(source, "media_type", f"{param}.source"), cache_control=cache)
    if kind == "url":
        return ir.ImagePart(url=_str(source, "url", f"{param}.source"), cache_control=cache)
    if kind == "file":  # Files API: the IR's ImagePart has no file_id, FilePart keeps it
        return ir.FilePart(file_id=_str(source, "file_id", f"{param}.source"), media_type="image/*",
                           cache_control=cache)
    raise _fail(f"unsupported image source type {kind!r}", f"{param}.source.type")


def _document(block: dict[str, Any], param: str) -> ir.FilePart:
    source = _obj(block.get("source"), f"{param}.source")
    kind = source.get("type")
    part = ir.FilePart(filename=block.get("title") if isinstance(block.get("title"), str) else None,
                       cache_control=_cache(block, param))
    if kind == "base64":
        part.data = _str(source, "data", f"{param}.source")
        part.media_type = _str(source, "media_type", f"{param}.source", required=False) or "application/pdf"
    elif kind == "text":
        part.data = base64.b64encode((_str(source, "data", f"{param}.source") or "").encode()).decode()
        part.media_type = _str(source, "media_type", f"{param}.source", required=False) or "text/plain"
    elif kind == "url":
        part.url = _str(source, "url", f"{param}.source")
        part.media_type = "application/pdf"
    elif kind == "file":
        part.file_id = _str(source, "file_id", f"{param}.source")
    elif kind == "content":  # custom content document: its text blocks, as plain text
        inner = source.get("content")
        text = inner if isinstance(inner, str) else "\n".join(
            b["text"] for b in inner if isinstance(b, dict) and isinstance(b.get("text"), str)
        ) if isinstance(inner, list) else ""
        part.data, part.media_type = base64.b64encode(text.encode()).decode(), "text/plain"
    else:
        raise _fail(f"unsupported document source type {kind!r}", f"{param}.source.type")
    return part


def _search_result_text(block: dict[str, Any]) -> ir.TextPart:
    """search_result blocks have no IR part: keep their title, source and text as plain text."""
    texts = [b["text"] for b in block.get("content") or [] if isinstance(b, dict) and isinstance(b.get("text"), str)]
    head = " ".join(str(block[k]) for k in ("title", "source") if isinstance(block.get(k), str))
    return ir.TextPart("\n".join([head, *texts]) if head else "\n".join(texts))


def _result_content(value: Any, param: str) -> list[ir.TextPart | ir.ImagePart | ir.FilePart]:
    if value is None:
        return []
    if isinstance(value, str):
        return [ir.TextPart(value)] if value else []
    if not isinstance(value, list):
        raise _fail("expected a string or an array of content blocks", param)
    out: list[ir.TextPart | ir.ImagePart | ir.FilePart] = []
    for j, block in enumerate(value):
        path = f"{param}.{j}"
        block = _obj(block, path)
        kind = block.get("type")
        if kind == "text":
            out.append(ir.TextPart(_str(block, "text", path) or "", cache_control=_cache(block, path)))
        elif kind == "image":
            out.append(_image(block, path))
        elif kind == "document":
            out.append(_document(block, path))
        elif kind == "search_result":
            out.append(_search_result_text(block))
        else:
            # tool_reference (tool search) and future block types: the IR cannot hold them;
            # keep them readable rather than failing the whole conversation.
            out.append(ir.TextPart(_dumps(block)))
    return out


def _block(block: Any, param: str) -> ir.Part:
    block = _obj(block, param)
    kind = block.get("type")
    if not isinstance(kind, str):
        raise _fail("field required" if kind is None else "expected a string", f"{param}.type")
    if kind == "text":
        return ir.TextPart(_str(block, "text", param) or "", cache_control=_cache(block, param))
    if kind == "image":
        return _image(block, param)
    if kind == "document":
        return _document(block, param)
    if kind == "search_result":
        return _search_result_text(block)
    if kind == "tool_use":
        args = block.get("input", {})
        return ir.ToolCallPart(id=_str(block, "id", param) or "", name=_str(block, "name", param) or "",
                               arguments=_dumps(_obj(args, f"{param}.input")), cache_control=_cache(block, param))
    if kind == "tool_result":
        return ir.ToolResultPart(
            call_id=_str(block, "tool_use_id", param) or "",
            content=_result_content(block.get("content"), f"{param}.content"),
            is_error=block.get("is_error") is True, cache_control=_cache(block, param),
        )
    if kind == "thinking":
        return ir.ReasoningPart(text=_str(block, "thinking", param) or "",
                                signature=_str(block, "signature", param, required=False) or None)
    if kind == "redacted_thinking":
        return ir.ReasoningPart(encrypted=_str(block, "data", param), redacted=True)
    if kind in SERVER_BLOCK_TYPES or kind.endswith("_tool_result"):
        # Server tools (web search, code execution, MCP connector...) ran at Anthropic: their
        # blocks only mean something to Anthropic, so the whole block is kept for pass-through.
        call_id = block.get("id") or block.get("tool_use_id") or ""
        args = block.get("input")
        return ir.ToolCallPart(id=str(call_id), name=str(block.get("name") or kind),
                               arguments=_dumps(args) if isinstance(args, dict) else "", kind="builtin", raw=block)
    raise _fail(f"unsupported content block type {kind!r}", f"{param}.type")


def _message(m: Any, param: str) -> list[ir.Message]:
    m = _obj(m, param)
    role = m.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise _fail("expected 'user' or 'assistant'", f"{param}.role")
    content = m.get("content")
    if isinstance(content, str):
        parts: list[ir.Part] = [ir.TextPart(content)]
    elif isinstance(content, list):
        parts = [_block(b, f"{param}.content.{j}") for j, b in enumerate(content)]
    else:
        raise _fail("expected a string or an array of content blocks", f"{param}.content")
    if role != "user":
        for j, p in enumerate(parts):
            if isinstance(p, ir.ToolResultPart):
                raise _fail(f"tool_result blocks are only allowed in user turns, not {role!r}",
                            f"{param}.content.{j}.type")
        return [ir.Message(role, parts)]
    # A user turn carrying tool results becomes "tool" message(s) + user message(s), in order.
    out: list[ir.Message] = []
    for p in parts:
        role_of = "tool" if isinstance(p, ir.ToolResultPart) else "user"
        if out and out[-1].role == role_of:
            out[-1].parts.append(p)
        else:
            out.append(ir.Message(role_of, [p]))
    return out or [ir.Message("user", [])]


def _tool(tool: Any, param: str) -> ir.ToolDef:
    tool = _obj(tool, param)
    kind = tool.get("type")
    if kind in (None, "custom"):
        schema = tool.get("input_schema")
        extra = {k: v for k, v in tool.items() if k not in ("type", "name", "description", "input_schema",
                                                               "cache_control")}
        return ir.ToolDef(
            name=_str(tool, "name", param) or "",
            description=tool.get("description") if isinstance(tool.get("description"), str) else None,
            parameters=_obj(schema, f"{param}.input_schema") if schema is not None else None,
            strict=tool["strict"] if isinstance(tool.get("strict"), bool) else None,
            cache_control=_cache(tool, param),
            # strict, defer_loading, input_examples...: kept for Anthropic targets only (strict is
            # not sent for other formats' tools: not every Anthropic model has structured outputs).
            raw=dict(tool) if extra else None,
        )
    if not isinstance(kind, str):
        raise _fail("expected a string", f"{param}.type")
    builtin = DATE_SUFFIX.sub("", kind)
    return ir.ToolDef(name=str(tool.get("name") or builtin), kind="builtin", builtin_type=builtin, raw=dict(tool),
                      cache_control=_cache(tool, param))


def _tool_choice(value: Any) -> tuple[ir.ToolChoice, bool | None]:
    choice = _obj(value, "tool_choice")
    kind = choice.get("type")
    parallel = False if choice.get("disable_parallel_tool_use") is True else None
    if kind == "auto":
        return ir.ToolChoice("auto"), parallel
    if kind == "any":
        return ir.ToolChoice("required"), parallel
    if kind == "none":
        return ir.ToolChoice("none"), None
    if kind == "tool":
        return ir.ToolChoice("tool", _str(choice, "name", "tool_choice")), parallel
    raise _fail("expected 'auto', 'any', 'tool' or 'none'", "tool_choice.type")


def _thinking(value: Any, extra: dict[str, Any]) -> ir.Reasoning:
    thinking = _obj(value, "thinking")
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise _fail("expected an integer", "thinking.budget_tokens")
        if set(thinking) - {"type", "budget_tokens"}:
            extra["thinking"] = dict(thinking)  # e.g. display: "omitted"
        return ir.Reasoning(enabled=True, budget_tokens=budget)
    if kind == "disabled":
        return ir.Reasoning(enabled=False)
    if not isinstance(kind, str):
        raise _fail("field required", "thinking.type")
    # "adaptive" (the model picks its budget) and newer modes: thinking on, no budget; the raw
    # setting is kept so an Anthropic target gets it back unchanged.
    extra["thinking"] = dict(thinking)
    return ir.Reasoning(enabled=True)


def request_to_ir(payload: dict[str, Any]) -> ir.Request:
    body = _obj(payload, "body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _fail("field required", "model")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise _fail("field required", "max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
        raise _fail("expected a non-negative integer", "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _fail("field required" if messages is None else "expected an array", "messages")

    extra = {k: v for k, v in body.items() if k not in _KNOWN_KEYS}
    req = ir.Request(model=model, max_output_tokens=max_tokens, extra=extra, source_format="messages")
    for i, m in enumerate(messages):
        req.messages.extend(_message(m, f"messages.{i}"))

    system = body.get("system")
    if isinstance(system, str):
        req.system = [ir.TextPart(system)] if system else []
    elif isinstance(system, list):
        for j, block in enumerate(system):
            block = _obj(block, f"system.{j}")
            if block.get("type") != "text":
                raise _fail("expected 'text'", f"system.{j}.type")
            req.system.append(ir.TextPart(_str(block, "text", f"system.{j}") or "",
                                          cache_control=_cache(block, f"system.{j}")))
    elif system is not None:
        raise _fail("expected a string or an array of text blocks", "system")

    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _fail("expected an array", "tools")
        req.tools = [_tool(t, f"tools.{i}") for i, t in enumerate(tools)]
    if body.get("tool_choice") is not None:
        req.tool_choice, req.parallel_tool_calls = _tool_choice(body["tool_choice"])
    if body.get("thinking") is not None:
        req.reasoning = _thinking(body["thinking"], extra)

    req.temperature = _number(body, "temperature")
    req.top_p = _number(body, "top_p")
    req.top_k = _number(body, "top_k", int)
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _fail("expected an array of strings", "stop_sequences")
        req.stop = list(stops)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _fail("expected a boolean", "stream")
    req.stream = stream is True
    req.include_usage = req.stream  # Anthropic streams always carry usage
    metadata = body.get("metadata")
    if metadata is not None:
        user = _obj(metadata, "metadata").get("user_id")
        req.user = user if isinstance(user, str) else None

    config = extra.get("output_config")
    if isinstance(config, dict):
        rest = dict(config)
        fmt = rest.pop("format", None)
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            schema = fmt.get("schema")
            req.response_format = ir.ResponseFormat(
                "json_schema", name=fmt.get("name") if isinstance(fmt.get("name"), str) else None,
                schema=schema if isinstance(schema, dict) else None)
        if rest:
            extra["output_config"] = rest
        else:
            extra.pop("output_config")
        effort = rest.get("effort")
        if isinstance(effort, str) and req.reasoning is not None and req.reasoning.enabled:
            # Effort applies to the whole answer; with thinking on it is the reasoning effort
            # other formats know ("xhigh"/"max" are beyond OpenAI's scale).
            req.reasoning.effort = {"xhigh": "high", "max": "high"}.get(effort, effort)
    return req


# ======================================================================================= responses


def response_to_ir(payload: dict[str, Any]) -> ir.Response:
    msg = _obj(payload, "response")
    content = msg.get("content")
    if not isinstance(content, list):
        raise ir.ConversionError("the upstream message has no content array", "content")
    parts: list[ir.Part] = []
    calls = structured = 0
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(ir.TextPart(block["text"]))
        elif kind == "thinking":
            parts.append(ir.ReasoningPart(text=str(block.get("thinking") or ""),
                                          signature=block.get("signature") or None))
        elif kind == "redacted_thinking":
            parts.append(ir.ReasoningPart(encrypted=str(block.get("data") or ""), redacted=True))
        elif kind == "tool_use":
            args = _dumps(block.get("input") if isinstance(block.get("input"), dict) else {})
            if is_structured_tool(block.get("name")):
                structured += 1
                parts.append(ir.TextPart(args))  # the emulated response_format answer
            else:
                calls += 1
                parts.append(ir.ToolCallPart(id=str(block.get("id") or ""), name=str(block.get("name") or ""),
                                             arguments=args))
        elif isinstance(kind, str) and (kind in SERVER_BLOCK_TYPES or kind.endswith("_tool_result")):
            args = block.get("input")
            parts.append(ir.ToolCallPart(
                id=str(block.get("id") or block.get("tool_use_id") or ""), name=str(block.get("name") or kind),
                arguments=_dumps(args) if isinstance(args, dict) else "", kind="builtin", raw=block))
    reason = stop_to_ir(msg.get("stop_reason"))
    if reason == "tool_calls" and structured and not calls:
        reason = "stop"
    usage = msg.get("usage")
    details = usage.get("output_tokens_details") if isinstance(usage, dict) else None
    thinking = details.get("thinking_tokens") if isinstance(details, dict) else 0
    return ir.Response(
        id=str(msg.get("id") or ""), model=str(msg.get("model") or ""), parts=parts, stop_reason=reason,
        stop_sequence=msg.get("stop_sequence") if isinstance(msg.get("stop_sequence"), str) else None,
        usage=usage_to_ir(usage), reasoning_tokens=thinking if isinstance(thinking, int) else 0,
    )


def response_from_ir(response: ir.Response, request: ir.Request) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    tool_used = False
    for p in response.parts:
        if isinstance(p, ir.TextPart):
            if p.text:
                content.append({"type": "text", "text": p.text})
        elif isinstance(p, ir.ReasoningPart):
            if p.text or p.signature:
                content.append({"type": "thinking", "thinking": p.text, "signature": p.signature or ""})
            elif p.encrypted:
                content.append({"type": "redacted_thinking", "data": p.encrypted})
        elif isinstance(p, ir.ToolCallPart):
            if p.kind == "builtin":
                if is_anthropic_server_item(p.raw, block=True):
                    content.append(dict(p.raw))  # type: ignore[arg-type]
                continue  # another provider's server-side tool call: nothing for the caller to run
            tool_used = True
            content.append({"type": "tool_use", "id": p.id or f"toolu_{len(content)}", "name": p.name,
                            "input": tool_input(p)})
    if response.refusal and not any(b["type"] == "text" for b in content):
        content.append({"type": "text", "text": response.refusal})
    rid = response.id if response.id.startswith("msg_") else f"msg_{response.id}"
    return {
        "id": rid, "type": "message", "role": "assistant", "model": response.model or request.model,
        "content": content,
        "stop_reason": stop_from_ir(response.stop_reason, response.stop_sequence, tool_used),
        "stop_sequence": response.stop_sequence,
        "usage": usage_wire(response.usage, reasoning_tokens=response.reasoning_tokens),
    }
