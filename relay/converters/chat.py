"""OpenAI Chat Completions <-> IR. Pure: no Django, no I/O.

API reference: https://platform.openai.com/docs/api-reference/chat/create (request),
https://platform.openai.com/docs/api-reference/chat/object (response); streams live in
`relay.converters.chat_stream` and are re-exported here.

What Chat cannot carry, and is therefore dropped when the IR came from another format:
- cache_control marks (Chat has none; OpenAI caches prompts automatically);
- reasoning signatures and encrypted reasoning (only the reasoning *text* goes out, as DeepSeek's
  `reasoning_content`);
- ToolResultPart.is_error (a Chat tool message has no error flag);
- builtin tool calls in history and builtin tools other than web search (see
  `dropped_builtin_tools`), top_k and thinking budgets (Chat has neither).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from relay.converters.chat_response import read_tool_call, response_from_ir, response_to_ir
from relay.converters.chat_stream import (
    StreamDecoder,
    StreamEncoder,
    dumps_arguments,
    reasoning_text,
)
from relay.ir import (
    AudioPart,
    ConversionError,
    FilePart,
    ImagePart,
    Message,
    Part,
    Reasoning,
    ReasoningPart,
    Request,
    ResponseFormat,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolDef,
    ToolResultPart,
)

__all__ = [
    "StreamDecoder",
    "StreamEncoder",
    "dropped_builtin_tools",
    "request_from_ir",
    "request_to_ir",
    "response_from_ir",
    "response_to_ir",
]

# Extra fields of another format (Responses) that mean the same in Chat Completions.
SHARED_EXTRA = frozenset({"service_tier", "prompt_cache_key", "safety_identifier", "top_logprobs"})

# Request fields mapped onto IR fields; every other top-level field goes to Request.extra.
_MAPPED = {
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "response_format",
    "max_completion_tokens", "max_tokens", "temperature", "top_p", "stop", "seed", "n", "stream",
    "stream_options", "user", "metadata", "store", "reasoning_effort", "functions", "function_call",
}  # fmt: skip
_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
_DATA_URL = re.compile(r"^data:([^;,]*)(?:;[^,]*)?;base64,", re.IGNORECASE)


# ============================================================================ request -> IR


def request_to_ir(payload: dict[str, Any]) -> Request:
    if not isinstance(payload, dict):
        raise ConversionError("the request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise ConversionError("you must provide a model parameter", "model")
    messages = payload.get("messages")
    if not isinstance(messages, list):
        raise ConversionError("messages must be an array", "messages")
    if not messages:
        raise ConversionError("messages must contain at least one message", "messages")

    request = Request(model=model)
    _read_messages(messages, request)
    _read_tools(payload, request)
    _read_options(payload, request)
    request.extra = {key: value for key, value in payload.items() if key not in _MAPPED}
    request.source_format = "chat"
    tool_choice = payload.get("tool_choice")
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "allowed_tools":
        request.extra["tool_choice"] = tool_choice  # restored by request_from_ir
    stream_options = payload.get("stream_options")
    if isinstance(stream_options, dict):
        rest = {k: v for k, v in stream_options.items() if k != "include_usage"}
        if rest:  # e.g. include_obfuscation: kept for a Chat upstream
            request.extra["stream_options"] = rest
    # top_k is not OpenAI's, but vLLM/OpenRouter callers send it: it stays in extra for a Chat
    # upstream and also fills the IR field for Anthropic/Gemini upstreams.
    top_k = payload.get("top_k")
    if isinstance(top_k, int) and not isinstance(top_k, bool):
        request.top_k = top_k
    return request


def _read_messages(messages: list[Any], request: Request) -> None:
    leading = True
    legacy_calls: dict[str, str] = {}  # function name -> id given to its last legacy call
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            raise ConversionError("each message must be an object", path)
        role = message.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise ConversionError(f"unknown message role {role!r}", f"{path}.role")
        content = message.get("content")
        name = message.get("name") if isinstance(message.get("name"), str) else None
        if role in ("system", "developer"):
            parts = _content_parts(content, f"{path}.content", allowed={"text"})
            texts = [p for p in parts if isinstance(p, TextPart)]
            if leading:
                request.system.extend(texts)
            else:
                request.messages.append(Message(role=role, parts=list(texts), name=name))
            continue
        leading = False
        if role == "user":
            request.messages.append(
                Message(role="user", parts=_content_parts(content, f"{path}.content", allowed=_USER_PARTS), name=name)
            )
        elif role == "assistant":
            request.messages.append(_assistant_message(message, i, legacy_calls))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise ConversionError("tool messages need a tool_call_id", f"{path}.tool_call_id")
            result = ToolResultPart(call_id=call_id, content=_result_content(content, f"{path}.content"))
            request.messages.append(Message(role="tool", parts=[result]))
        else:  # "function": the deprecated functions API's result message
            call_id = legacy_calls.get(name or "") or f"call_{name or i}"
            result = ToolResultPart(call_id=call_id, content=_result_content(content, f"{path}.content"))
            request.messages.append(Message(role="tool", parts=[result]))


_USER_PARTS = {"text", "image_url", "input_audio", "file"}


def _content_parts(content: Any, path: str, allowed: set[str]) -> list[Part]:
    """Chat content (string, parts or null) -> IR parts. Empty strings are skipped: other
    formats (Anthropic) reject empty text blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)] if content else []
    if not isinstance(content, list):
        raise ConversionError("content must be a string or an array of content parts", path)
    parts: list[Part] = []
    for j, item in enumerate(content):
        part = _content_part(item, f"{path}[{j}]", allowed)
        if part is not None:
            parts.append(part)
    return parts


def _content_part(item: Any, path: str, allowed: set[str]) -> Part | None:
    if not isinstance(item, dict):
        raise ConversionError("each content part must be an object", path)
    kind = item.get("type")
    if kind not in allowed:
        if kind in _USER_PARTS or kind == "refusal":
            raise ConversionError(f"content parts of type {kind!r} are not allowed in this message", f"{path}.type")
        raise ConversionError(f"unknown content part type {kind!r}", f"{path}.type")
    if kind in ("text", "refusal"):
        # An assistant's refusal part is kept as text: the IR has no refusal on messages.
        text = item.get(kind)
        if not isinstance(text, str):
            raise ConversionError(f"{kind} parts need a string {kind!r}", f"{path}.{kind}")
        return TextPart(text) if text else None
    if kind == "image_url":
        image = item.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image  # some clients send a bare string
        if not isinstance(url, str) or not url:
            raise ConversionError("image_url parts need a url", f"{path}.image_url.url")
        detail = image.get("detail") if isinstance(image, dict) else None
        # data: URLs stay URLs (never decoded here); targets that need bytes split them.
        return ImagePart(url=url, detail=detail if isinstance(detail, str) else None)
    if kind == "input_audio":
        audio = item.get("input_audio")
        if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
            raise ConversionError("input_audio parts need base64 data", f"{path}.input_audio.data")
        if not isinstance(audio.get("format"), str):
            raise ConversionError("input_audio parts need a format", f"{path}.input_audio.format")
        return AudioPart(data=audio["data"], format=audio["format"])
    # file: https://platform.openai.com/docs/guides/pdf-files — file_data is a data: URL.
    file = item.get("file")
    if not isinstance(file, dict) or not (
        isinstance(file.get("file_id"), str) or isinstance(file.get("file_data"), str)
    ):
        raise ConversionError("file parts need a file_id or file_data", f"{path}.file")
    part = FilePart(file_id=file.get("file_id"), filename=file.get("filename"))
    file_data = file.get("file_data")
    if isinstance(file_data, str):
        match = _DATA_URL.match(file_data)
        if match:
            part.media_type = match.group(1) or None
            part.data = file_data[match.end() :]
        else:
            part.data = file_data
    return part


def _result_content(content: Any, path: str) -> list[TextPart | ImagePart | FilePart]:
    # Chat allows only text in tool messages; images/files are accepted too since the IR can
    # carry them (some clients send them) and Anthropic/Responses targets can place them.
    parts = _content_parts(content, path, allowed={"text", "image_url", "file"})
    return [p for p in parts if isinstance(p, TextPart | ImagePart | FilePart)]


def _assistant_message(message: dict[str, Any], i: int, legacy_calls: dict[str, str]) -> Message:
    path = f"messages[{i}]"
    parts: list[Part] = []
    reasoning = reasoning_text(message)
    if reasoning:
        parts.append(ReasoningPart(text=reasoning))
    parts.extend(_content_parts(message.get("content"), f"{path}.content", allowed={"text", "refusal"}))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(TextPart(refusal))  # the IR has no refusal on input messages
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            raise ConversionError("tool_calls must be an array", f"{path}.tool_calls")
        for k, call in enumerate(tool_calls):
            parts.append(read_tool_call(call, f"{path}.tool_calls[{k}]"))
    function_call = message.get("function_call")
    if isinstance(function_call, dict):  # deprecated functions API
        name = function_call.get("name")
        if not isinstance(name, str) or not name:
            raise ConversionError("function_call needs a name", f"{path}.function_call.name")
        call_id = f"call_{name}_{i}"
        legacy_calls[name] = call_id
        parts.append(ToolCallPart(id=call_id, name=name, arguments=dumps_arguments(function_call.get("arguments"))))
    name = message.get("name") if isinstance(message.get("name"), str) else None
    return Message(role="assistant", parts=parts, name=name)


def _read_tools(payload: dict[str, Any], request: Request) -> None:
    tools = payload.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise ConversionError("tools must be an array", "tools")
        for i, tool in enumerate(tools):
            request.tools.append(_tool_def(tool, f"tools[{i}]"))
    functions = payload.get("functions")  # deprecated functions API
    if isinstance(functions, list):
        for i, function in enumerate(functions):
            request.tools.append(_function_def(function, f"functions[{i}]"))

    choice = payload.get("tool_choice")
    if choice is None and payload.get("function_call") is not None:
        legacy = payload["function_call"]
        choice = {"type": "function", "function": legacy} if isinstance(legacy, dict) else legacy
    if choice is not None:
        request.tool_choice = _tool_choice(choice)
    parallel = payload.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise ConversionError("parallel_tool_calls must be a boolean", "parallel_tool_calls")
        request.parallel_tool_calls = parallel


def _tool_def(tool: Any, path: str) -> ToolDef:
    if not isinstance(tool, dict):
        raise ConversionError("each tool must be an object", path)
    kind = tool.get("type")
    if kind == "function":
        return _function_def(tool.get("function"), f"{path}.function")
    if kind == "custom":
        custom = tool.get("custom")
        name = custom.get("name") if isinstance(custom, dict) else None
        if not isinstance(name, str) or not name:
            raise ConversionError("custom tools need a name", f"{path}.custom.name")
        description = custom.get("description")
        # The IR has no field for a custom tool's input `format`: the Chat item is kept in raw.
        return ToolDef(
            name=name, description=description if isinstance(description, str) else None, kind="custom", raw=tool
        )
    raise ConversionError(f"unknown tool type {kind!r}", f"{path}.type")


def _function_def(function: Any, path: str) -> ToolDef:
    if not isinstance(function, dict):
        raise ConversionError("function tools need a function object", path)
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise ConversionError("function tools need a name", f"{path}.name")
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise ConversionError("function parameters must be a JSON schema object", f"{path}.parameters")
    description = function.get("description")
    strict = function.get("strict")
    return ToolDef(
        name=name,
        description=description if isinstance(description, str) else None,
        parameters=parameters,
        strict=strict if isinstance(strict, bool) else None,
    )


def _tool_choice(choice: Any) -> ToolChoice:
    if choice in ("auto", "none", "required"):
        return ToolChoice(mode=choice)
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind in ("function", "custom"):
            inner = choice.get(kind)
            name = inner.get("name") if isinstance(inner, dict) else None
            if not isinstance(name, str) or not name:
                raise ConversionError("a named tool_choice needs a name", f"tool_choice.{kind}.name")
            return ToolChoice(mode="tool", name=name)
        if kind == "allowed_tools":
            # No IR field for the allowed subset: the mode goes to the IR (other targets get an
            # approximation) and request_from_ir restores the original from extra.
            allowed = choice.get("allowed_tools")
            mode = allowed.get("mode") if isinstance(allowed, dict) else None
            return ToolChoice(mode="required" if mode == "required" else "auto")
    raise ConversionError("tool_choice must be auto, none, required or a named tool", "tool_choice")


def _read_options(payload: dict[str, Any], request: Request) -> None:
    response_format = payload.get("response_format")
    if response_format is not None:
        request.response_format = _response_format(response_format)
    for key in ("max_completion_tokens", "max_tokens"):
        value = payload.get(key)
        if value is not None:
            request.max_output_tokens = _number(value, key, integer=True)
            break
    for key in ("temperature", "top_p"):
        if payload.get(key) is not None:
            setattr(request, key, _number(payload[key], key))
    for key in ("seed", "n"):
        if payload.get(key) is not None:
            setattr(request, key, _number(payload[key], key, integer=True))
    stop = payload.get("stop")
    if isinstance(stop, str):
        request.stop = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        request.stop = list(stop)
    elif stop is not None:
        raise ConversionError("stop must be a string or an array of strings", "stop")
    request.stream = payload.get("stream") is True
    stream_options = payload.get("stream_options")
    request.include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    if isinstance(payload.get("user"), str):
        request.user = payload["user"]
    if isinstance(payload.get("metadata"), dict):
        request.metadata = payload["metadata"]
    if isinstance(payload.get("store"), bool):
        request.store = payload["store"]
    effort = payload.get("reasoning_effort")
    if isinstance(effort, str):
        request.reasoning = Reasoning(effort=effort)
    elif isinstance(payload.get("reasoning"), dict):
        # OpenRouter's unified `reasoning` object (kept in extra as well, for a Chat upstream).
        spec = payload["reasoning"]
        request.reasoning = Reasoning(
            effort=spec.get("effort") if isinstance(spec.get("effort"), str) else None,
            budget_tokens=spec.get("max_tokens") if isinstance(spec.get("max_tokens"), int) else None,
            enabled=spec.get("enabled") if isinstance(spec.get("enabled"), bool) else None,
        )


def _number(value: Any, param: str, integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not float(value).is_integer()):
        raise ConversionError(f"{param} must be {'an integer' if integer else 'a number'}", param)
    return int(value) if integer else value


def _response_format(value: Any) -> ResponseFormat:
    if not isinstance(value, dict):
        raise ConversionError("response_format must be an object", "response_format")
    kind = value.get("type")
    if kind in ("text", "json_object"):
        return ResponseFormat(type=kind)
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict):
            raise ConversionError(
                "json_schema response formats need a json_schema object", "response_format.json_schema"
            )
        schema = spec.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise ConversionError("the schema must be an object", "response_format.json_schema.schema")
        strict = spec.get("strict")
        return ResponseFormat(
            type="json_schema",
            name=spec.get("name") if isinstance(spec.get("name"), str) else None,
            schema=schema,
            strict=strict if isinstance(strict, bool) else None,
            description=spec.get("description") if isinstance(spec.get("description"), str) else None,
        )
    raise ConversionError(f"unknown response_format type {kind!r}", "response_format.type")


# ============================================================================ IR -> request

# OpenAI reasoning models reject `max_tokens` and need `max_completion_tokens`; most
# OpenAI-compatible servers (DeepSeek, vLLM, older gateways) only know `max_tokens`.
# https://platform.openai.com/docs/guides/reasoning
_COMPLETION_TOKENS_MODEL = re.compile(r"(^|/)(o\d|gpt-5|gpt-4\.1|codex)", re.IGNORECASE)


def _is_web_search(tool: ToolDef) -> bool:
    return tool.kind == "builtin" and (tool.builtin_type or tool.name or "").startswith("web_search")


def dropped_builtin_tools(request: Request) -> list[str]:
    """Names of the builtin tools `request_from_ir` cannot send to a Chat upstream (for a
    response header). Web search survives as `web_search_options` on search models only."""
    dropped = []
    for tool in request.tools:
        if tool.kind != "builtin":
            continue
        if _is_web_search(tool) and "search" in request.model.lower():
            continue
        dropped.append(tool.name or tool.builtin_type or "builtin")
    return dropped


def request_from_ir(request: Request) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": request.model, "messages": _write_messages(request)}

    tools: list[dict[str, Any]] = []
    for tool in request.tools:
        if tool.kind == "function":
            tools.append({"type": "function", "function": _function_payload(tool)})
        elif tool.kind == "custom":
            tools.append(_custom_payload(tool))
        elif _is_web_search(tool) and "search" in request.model.lower():
            payload["web_search_options"] = _web_search_options(tool.raw or {})
    if tools:
        payload["tools"] = tools
        # OpenAI rejects tool_choice / parallel_tool_calls without tools.
        choice = request.extra.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
            payload["tool_choice"] = choice
        elif request.tool_choice is not None:
            payload["tool_choice"] = _tool_choice_payload(request.tool_choice, request.tools)
        if request.parallel_tool_calls is not None:
            payload["parallel_tool_calls"] = request.parallel_tool_calls

    if request.response_format is not None:
        payload["response_format"] = _response_format_payload(request.response_format)
    if request.reasoning is not None and request.reasoning.effort and "reasoning" not in request.extra:
        payload["reasoning_effort"] = request.reasoning.effort
    if request.max_output_tokens is not None:
        key = "max_completion_tokens" if _COMPLETION_TOKENS_MODEL.search(request.model) else "max_tokens"
        payload[key] = request.max_output_tokens
    for key in ("temperature", "top_p", "seed", "n", "user", "metadata", "store"):
        value = getattr(request, key)
        if value is not None:
            payload[key] = value
    if request.stop:
        payload["stop"] = list(request.stop)
    if request.stream:
        payload["stream"] = True
        # Always ask for usage: the gateway bills from it, and the caller's own format may report
        # usage even when it did not ask (Anthropic, Responses). The caller's include_usage only
        # shapes what StreamEncoder sends back.
        extra_options = request.extra.get("stream_options")
        payload["stream_options"] = {
            **(extra_options if isinstance(extra_options, dict) else {}),
            "include_usage": True,
        }
    for key, value in request.extra.items():
        if key == "tool_choice":  # handled with the tools above
            continue
        if request.source_format in (None, "chat") or key in SHARED_EXTRA:
            payload.setdefault(key, value)
    if not request.stream:
        payload.pop("stream_options", None)  # OpenAI rejects stream_options without stream
    return payload


def _write_messages(request: Request) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = "\n\n".join(part.text for part in request.system)
    if request.system:
        out.append({"role": "system", "content": system})
    pending: list[dict[str, Any]] = []  # tool-result images waiting for the end of the tool run
    for message in request.messages:
        if message.role == "tool":
            out.extend(_tool_messages(message, pending))
            continue
        if pending:
            out.append({"role": "user", "content": pending})
            pending = []
        if message.role in ("system", "developer"):
            item: dict[str, Any] = {"role": message.role, "content": _joined_text(message.parts, "\n\n")}
        elif message.role == "assistant":
            item = _assistant_payload(message)
        else:
            item = {"role": "user", "content": _user_content(message.parts)}
        if message.name:
            item["name"] = message.name
        out.append(item)
    if pending:
        out.append({"role": "user", "content": pending})
    return out


def _joined_text(parts: list[Any], separator: str) -> str:
    return separator.join(part.text for part in parts if isinstance(part, TextPart))


def _tool_messages(message: Message, pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One Chat tool message per result. Chat tool messages hold text only, and every result must
    directly follow the assistant's tool calls, so images/files wait in `pending` and go out in
    one user message after the run of tool messages."""
    out = []
    for part in message.parts:
        if isinstance(part, ToolResultPart):
            out.append({"role": "tool", "tool_call_id": part.call_id, "content": _joined_text(part.content, "\n\n")})
            media = [_part_payload(p) for p in part.content if not isinstance(p, TextPart)]
            if media:
                pending.append({"type": "text", "text": f"Attachments returned by tool call {part.call_id}:"})
                pending.extend(media)
        elif isinstance(part, TextPart | ImagePart | FilePart | AudioPart):
            pending.append(_part_payload(part))
    return out


def _user_content(parts: list[Part]) -> str | list[dict[str, Any]]:
    if all(isinstance(part, TextPart) for part in parts) and len(parts) <= 1:
        return parts[0].text if parts else ""  # type: ignore[union-attr]
    return [_part_payload(part) for part in parts if isinstance(part, TextPart | ImagePart | FilePart | AudioPart)]


def _part_payload(part: TextPart | ImagePart | FilePart | AudioPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        url = part.url or f"data:{part.media_type or 'image/png'};base64,{part.data or ''}"
        image: dict[str, Any] = {"url": url}
        if part.detail:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    if isinstance(part, AudioPart):
        return {"type": "input_audio", "input_audio": {"data": part.data, "format": part.format}}
    return _file_payload(part)


def _file_payload(part: FilePart) -> dict[str, Any]:
    # Chat file parts take PDFs by file_id or data URL only, no URL
    # (https://platform.openai.com/docs/guides/pdf-files).
    if part.data is not None and (part.media_type or "").startswith("text/"):
        # Plain-text documents (Anthropic "text" sources): Chat's advice is to send the text.
        try:
            return {"type": "text", "text": base64.b64decode(part.data, validate=True).decode("utf-8")}
        except (binascii.Error, ValueError):
            return {"type": "text", "text": part.data}
    file: dict[str, Any] = {}
    if part.file_id:
        file["file_id"] = part.file_id
    elif part.data is not None:
        file["file_data"] = f"data:{part.media_type or 'application/pdf'};base64,{part.data}"
    elif part.url:
        # No Chat equivalent: the model at least gets the link instead of silently nothing.
        return {"type": "text", "text": f"[document: {part.url}]"}
    if part.filename:
        file["filename"] = part.filename
    return {"type": "file", "file": file}


def _assistant_payload(message: Message) -> dict[str, Any]:
    item: dict[str, Any] = {"role": "assistant"}
    calls = []
    for part in message.parts:
        if isinstance(part, ToolCallPart):
            if part.kind == "custom":
                calls.append({"id": part.id, "type": "custom", "custom": {"name": part.name, "input": part.arguments}})
            elif part.kind == "function":
                function = {"name": part.name, "arguments": part.arguments or "{}"}
                calls.append({"id": part.id, "type": "function", "function": function})
            # builtin (server-side) calls ran at the provider; Chat cannot replay them.
    text = _joined_text(message.parts, "")
    item["content"] = text if text or not calls else None
    reasoning = "\n\n".join(p.text for p in message.parts if isinstance(p, ReasoningPart) and p.text)
    if reasoning:
        # DeepSeek-style field; signatures / encrypted reasoning cannot travel in Chat.
        item["reasoning_content"] = reasoning
    if calls:
        item["tool_calls"] = calls
    return item


def _function_payload(tool: ToolDef) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = tool.parameters
    if tool.strict is not None:
        function["strict"] = tool.strict
    return function


def _custom_payload(tool: ToolDef) -> dict[str, Any]:
    custom: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        custom["description"] = tool.description
    raw = tool.raw or {}
    # raw is the Chat item ({"type":"custom","custom":{...}}) or a Responses one (flat).
    source = raw.get("custom") if isinstance(raw.get("custom"), dict) else raw
    if isinstance(source.get("format"), dict):
        custom["format"] = source["format"]
    return {"type": "custom", "custom": custom}


def _web_search_options(raw: dict[str, Any]) -> dict[str, Any]:
    """A Responses web_search tool's options as Chat's web_search_options
    (https://platform.openai.com/docs/guides/tools-web-search?api-mode=chat)."""
    options: dict[str, Any] = {}
    if isinstance(raw.get("search_context_size"), str):
        options["search_context_size"] = raw["search_context_size"]
    location = raw.get("user_location")
    if isinstance(location, dict):
        approximate = {k: v for k, v in location.items() if k in ("city", "country", "region", "timezone") and v}
        if isinstance(location.get("approximate"), dict):
            approximate = location["approximate"]
        if approximate:
            options["user_location"] = {"type": "approximate", "approximate": approximate}
    return options


def _tool_choice_payload(choice: ToolChoice, tools: list[ToolDef]) -> Any:
    if choice.mode != "tool":
        return choice.mode
    kind = next((t.kind for t in tools if t.name == choice.name), "function")
    kind = "custom" if kind == "custom" else "function"
    return {"type": kind, kind: {"name": choice.name}}


def _response_format_payload(response_format: ResponseFormat) -> dict[str, Any]:
    if response_format.type != "json_schema":
        return {"type": response_format.type}
    spec: dict[str, Any] = {"name": response_format.name or "response"}  # name is required
    if response_format.description is not None:
        spec["description"] = response_format.description
    if response_format.schema is not None:
        spec["schema"] = response_format.schema
    if response_format.strict is not None:
        spec["strict"] = response_format.strict
    return {"type": "json_schema", "json_schema": spec}
