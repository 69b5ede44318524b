"""OpenAI Responses <-> IR: requests and non-stream responses here, streams in `responses_stream`,
shared item builders in `responses_items` (split to keep each file readable).

References: https://platform.openai.com/docs/api-reference/responses/create (request),
https://platform.openai.com/docs/api-reference/responses/object (response object),
https://platform.openai.com/docs/guides/function-calling, https://platform.openai.com/docs/guides/reasoning.

Decisions the IR leaves open (each documented where it is implemented):
- `namespace` tools group function/custom tools, and the model calls them with a separate
  `namespace` field on its `function_call` item. The namespace item is kept whole as a builtin
  ToolDef (for a Responses target) AND each inner tool is exposed as a flat ToolDef named
  `join_namespace(ns, name)` = `<ns>__<name>` (no doubled separator when `ns` already ends in
  "__"). Why "__" rather than ".": Chat (`^[a-zA-Z0-9_-]{1,64}$`) and Anthropic tool names reject
  dots, and `mcp__server__tool` is the flat name Codex itself used for MCP tools before namespaces.
  Flat names are mapped back to (namespace, name) from the request's tools, never by parsing.
- Items the IR has no part for (web_search_call, local_shell_call(_output), mcp_*, computer_call,
  shell/apply_patch calls and outputs, ...) become builtin ToolCallParts carrying the item in
  `raw`, in order, inside the assistant turn; a Responses target re-emits them verbatim, other
  targets drop builtin parts.
- `item_reference` items have no IR equivalent: they go to `extra["item_references"]` as
  `{"id", "position"}` (position = index in `messages` before which they stood) and are re-inserted
  there by `request_from_ir`. The gateway resolves them (like `previous_response_id`) before
  converting to another format.
- Anthropic thinking reaching a Responses caller: its text and signature (or redacted data) are
  packed into the reasoning item's `encrypted_content` with a `oneapi:` prefix, so that when the
  caller sends the item back (Codex does, with `store: false`) the signature is restored and the
  Anthropic upstream accepts the turn. Real OpenAI encrypted content never has that prefix.
"""

from __future__ import annotations

from typing import Any

from relay import ir
from relay.converters.responses_items import (
    SERVICE_TIERS,
    custom_names,
    fail,
    input_part,
    item_id,
    join_namespace,
    message_item,
    namespace_map,
    output_call_item,
    reasoning_from_ir,
    reasoning_from_item,
    reasoning_item,
    response_id,
    response_object,
    status_from_ir,
    stop_reason,
    text_format,
    tool_call_item,
    tool_choice_from_ir,
    tools_from_ir,
    usage_from_ir,
    usage_to_ir,
)
from relay.converters.responses_stream import StreamDecoder, StreamEncoder

__all__ = [
    "StreamDecoder",
    "StreamEncoder",
    "join_namespace",
    "request_from_ir",
    "request_to_ir",
    "response_from_ir",
    "response_to_ir",
]

_FUNCTION_KEYS = frozenset({"type", "name", "description", "parameters", "strict"})
# Request fields read into typed IR fields; every other top-level field goes to `extra`.
_TYPED_FIELDS = frozenset({
    "model", "instructions", "input", "tools", "tool_choice", "parallel_tool_calls", "text", "reasoning",
    "max_output_tokens", "temperature", "top_p", "stream", "store", "previous_response_id", "user", "metadata",
})
# `extra` keys a Responses upstream accepts with the same meaning (Chat shares several of them).
_PASS_EXTRA = ("background", "conversation", "max_tool_calls", "prompt", "prompt_cache_key",
               "prompt_cache_retention", "safety_identifier", "top_logprobs", "truncation", "context_management")
# Of those, the ones a Chat caller's extra means the same way (Claude's `context_management` does not).
_SHARED_EXTRA = frozenset({"prompt_cache_key", "safety_identifier", "top_logprobs"})
ENCRYPTED_REASONING = "reasoning.encrypted_content"


def _str(obj: dict[str, Any], key: str, path: str, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise fail(f"Invalid '{path}.{key}': expected a string.", f"{path}.{key}")
    return value


def _number(value: Any, param: str, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
        raise fail(f"Invalid '{param}': expected {'an integer' if integer else 'a number'}.", param)
    return value


def _typed(value: Any, kind: type, param: str) -> Any:
    if value is not None and not isinstance(value, kind):
        raise fail(f"Invalid '{param}': expected {kind.__name__}.", param)
    return value


def _content_parts(content: Any, path: str) -> list[ir.Part]:
    if isinstance(content, str):
        return [ir.TextPart(content)]
    if not isinstance(content, list):
        raise fail(f"Invalid '{path}': expected a string or an array of content parts.", path)
    parts: list[ir.Part] = []
    for j, c in enumerate(content):
        p = f"{path}[{j}]"
        if not isinstance(c, dict):
            raise fail(f"Invalid '{p}': expected an object.", p)
        kind = c.get("type")
        if kind in ("input_text", "output_text"):
            annotations = c.get("annotations") or []
            parts.append(ir.TextPart(_str(c, "text", p) or "", annotations=list(_typed(annotations, list, f"{p}.annotations"))))
        elif kind == "refusal":  # an earlier assistant refusal replayed as input: keep its text
            parts.append(ir.TextPart(_str(c, "refusal", p) or ""))
        elif kind == "input_image":
            parts.append(_image_part(c, p))
        elif kind == "input_file":
            parts.append(_file_part(c, p))
        elif kind == "input_audio":
            audio = c.get("input_audio")
            if not isinstance(audio, dict):
                raise fail(f"Invalid '{p}.input_audio': expected an object.", f"{p}.input_audio")
            parts.append(ir.AudioPart(data=_str(audio, "data", f"{p}.input_audio") or "",
                                      format=_str(audio, "format", f"{p}.input_audio") or ""))
        else:
            raise fail(f"Invalid '{p}.type': unsupported content type {kind!r}.", f"{p}.type")
    return parts


def _image_part(c: dict[str, Any], p: str) -> ir.Part:
    detail = _str(c, "detail", p, required=False)
    url = _str(c, "image_url", p, required=False)
    if url:
        return ir.ImagePart(url=url, detail=detail)
    file_id = _str(c, "file_id", p, required=False)
    if not file_id:
        raise fail(f"Invalid '{p}': input_image needs image_url or file_id.", f"{p}.image_url")
    # IR gap: ImagePart has no file_id; an image media type marks the FilePart as an image.
    return ir.FilePart(file_id=file_id, media_type="image/*")


def _file_part(c: dict[str, Any], p: str) -> ir.FilePart:
    part = ir.FilePart(filename=_str(c, "filename", p, required=False), file_id=_str(c, "file_id", p, required=False),
                       url=_str(c, "file_url", p, required=False))
    data = _str(c, "file_data", p, required=False)
    if data is not None:
        head, sep, b64 = data.partition(";base64,")
        if data.startswith("data:") and sep:
            part.media_type, part.data = head[5:] or None, b64
        else:
            part.data = data
    if part.data is None and part.file_id is None and part.url is None:
        raise fail(f"Invalid '{p}': input_file needs file_data, file_id or file_url.", f"{p}.file_data")
    return part


def _result_parts(output: Any, path: str) -> list[ir.TextPart | ir.ImagePart | ir.FilePart]:
    if isinstance(output, str):
        return [ir.TextPart(output)]
    parts = _content_parts(output, path)
    for j, part in enumerate(parts):
        if not isinstance(part, ir.TextPart | ir.ImagePart | ir.FilePart):
            raise fail(f"Invalid '{path}[{j}].type': not allowed in a tool output.", f"{path}[{j}].type")
    return parts  # type: ignore[return-value]


def _turn(req: ir.Request, role: ir.Role) -> ir.Message:
    """The last message if it has `role`, else a new one: consecutive items merge into one turn."""
    if not req.messages or req.messages[-1].role != role:
        req.messages.append(ir.Message(role))
    return req.messages[-1]


def _read_input(value: Any, req: ir.Request) -> None:
    if value is None:
        return
    if isinstance(value, str):
        req.messages.append(ir.Message("user", [ir.TextPart(value)]))
        return
    if not isinstance(value, list):
        raise fail("Invalid 'input': expected a string or an array of items.", "input")
    leading = True
    for i, item in enumerate(value):
        path = f"input[{i}]"
        if not isinstance(item, dict):
            raise fail(f"Invalid '{path}': expected an object.", path)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise fail(f"Invalid '{path}.role': expected user, assistant, system or developer.", f"{path}.role")
            parts = _content_parts(item.get("content"), f"{path}.content")
            if leading and role in ("system", "developer") and all(isinstance(x, ir.TextPart) for x in parts):
                req.system.extend(parts)  # type: ignore[arg-type]
                continue
            leading = False
            if role == "assistant":
                _turn(req, "assistant").parts.extend(parts)
            else:
                req.messages.append(ir.Message(role, parts))
            continue
        leading = False
        if kind in ("function_call", "custom_tool_call"):
            name = _str(item, "name", path) or ""
            namespace = item.get("namespace")
            if isinstance(namespace, str) and namespace:
                name = join_namespace(namespace, name)
            custom = kind == "custom_tool_call"
            args = _str(item, "input" if custom else "arguments", path, required=custom) or ""
            _turn(req, "assistant").parts.append(ir.ToolCallPart(
                id=_str(item, "call_id", path) or "", name=name, arguments=args, kind="custom" if custom else "function"))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = _str(item, "call_id", path) or ""
            output = item.get("output")
            if output is None:
                raise fail(f"Missing '{path}.output'.", f"{path}.output")
            _turn(req, "tool").parts.append(ir.ToolResultPart(call_id, _result_parts(output, f"{path}.output")))
        elif kind == "reasoning":
            _turn(req, "assistant").parts.append(reasoning_from_item(item, path))
        elif kind == "item_reference":
            refs = req.extra.setdefault("item_references", [])
            refs.append({"id": _str(item, "id", path), "position": len(req.messages)})
        elif isinstance(kind, str) and kind:
            # Builtin / client-executed tool items (web_search_call, local_shell_call_output, ...).
            call_id = item.get("call_id") or item.get("id") or ""
            _turn(req, "assistant").parts.append(
                ir.ToolCallPart(id=str(call_id), name=kind, kind="builtin", raw=item))
        else:
            raise fail(f"Invalid '{path}.type': expected an item type.", f"{path}.type")


def _tool_defs(tool: Any, path: str, namespace: str | None = None) -> list[ir.ToolDef]:
    if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
        raise fail(f"Invalid '{path}.type': expected a tool type.", f"{path}.type")
    kind = tool["type"]
    if kind in ("function", "custom"):
        name = _str(tool, "name", path) or ""
        flat = join_namespace(namespace, name) if namespace else name
        description = _str(tool, "description", path, required=False)
        if kind == "custom":
            return [ir.ToolDef(flat, description, kind="custom", builtin_type="custom", raw=tool)]
        return [ir.ToolDef(
            flat, description, parameters=_typed(tool.get("parameters"), dict, f"{path}.parameters"),
            strict=_typed(tool.get("strict"), bool, f"{path}.strict"),
            raw=tool if set(tool) - _FUNCTION_KEYS else None,  # defer_loading, output_schema, ...
        )]
    if namespace is not None:
        raise fail(f"Invalid '{path}.type': a namespace holds function and custom tools.", f"{path}.type")
    if kind == "namespace":
        name = _str(tool, "name", path) or ""
        inner = tool.get("tools")
        if not isinstance(inner, list):
            raise fail(f"Invalid '{path}.tools': expected an array.", f"{path}.tools")
        defs = [ir.ToolDef(name, _str(tool, "description", path, required=False), kind="builtin",
                           builtin_type="namespace", raw=tool)]
        for j, sub in enumerate(inner):
            defs.extend(_tool_defs(sub, f"{path}.tools[{j}]", name))
        return defs
    name = tool.get("name") if isinstance(tool.get("name"), str) else kind
    return [ir.ToolDef(name, kind="builtin", builtin_type=kind, raw=tool)]


def _tool_choice(value: Any, req: ir.Request) -> ir.ToolChoice | None:
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        return ir.ToolChoice(value)
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise fail("Invalid 'tool_choice': expected auto, none, required or an object.", "tool_choice")
    if value["type"] in ("function", "custom"):
        return ir.ToolChoice("tool", _str(value, "name", "tool_choice"))
    # allowed_tools, hosted tool types, mcp, ...: the IR keeps the mode; a Responses target gets it whole.
    req.extra["tool_choice"] = value
    return ir.ToolChoice("auto" if value.get("mode") == "auto" else "required")


def _text_config(value: Any, req: ir.Request) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise fail("Invalid 'text': expected an object.", "text")
    rest = {k: v for k, v in value.items() if k != "format"}
    if rest:
        req.extra["text"] = rest  # verbosity, ...
    fmt = value.get("format")
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise fail("Invalid 'text.format': expected an object.", "text.format")
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        req.response_format = ir.ResponseFormat(kind)
    elif kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise fail("Invalid 'text.format.schema': expected a JSON schema object.", "text.format.schema")
        req.response_format = ir.ResponseFormat(
            "json_schema", name=_str(fmt, "name", "text.format", required=False), schema=schema,
            strict=_typed(fmt.get("strict"), bool, "text.format.strict"),
            description=_str(fmt, "description", "text.format", required=False))
    else:
        raise fail(f"Invalid 'text.format.type': unsupported format {kind!r}.", "text.format.type")


def request_to_ir(payload: dict[str, Any]) -> ir.Request:
    """A Responses request body -> IR. Unknown fields go to `extra`."""
    if not isinstance(payload, dict):
        raise fail("The request body must be a JSON object.", None)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise fail("Missing required parameter: 'model'.", "model")
    req = ir.Request(
        model=model, extra={k: v for k, v in payload.items() if k not in _TYPED_FIELDS}, source_format="responses"
    )
    instructions = _typed(payload.get("instructions"), str, "instructions")
    if instructions:
        req.system.append(ir.TextPart(instructions))
    _read_input(payload.get("input"), req)
    tools = _typed(payload.get("tools"), list, "tools") or []
    for i, tool in enumerate(tools):
        req.tools.extend(_tool_defs(tool, f"tools[{i}]"))
    req.tool_choice = _tool_choice(payload.get("tool_choice"), req)
    req.parallel_tool_calls = _typed(payload.get("parallel_tool_calls"), bool, "parallel_tool_calls")
    _text_config(payload.get("text"), req)
    reasoning = _typed(payload.get("reasoning"), dict, "reasoning")
    if reasoning:
        effort = _str(reasoning, "effort", "reasoning", required=False)
        summary = reasoning.get("summary") or reasoning.get("generate_summary")  # generate_summary: deprecated name
        req.reasoning = ir.Reasoning(effort=effort, summary=summary if isinstance(summary, str) else None,
                                     enabled=False if effort == "none" else None)
    req.max_output_tokens = _number(payload.get("max_output_tokens"), "max_output_tokens", integer=True)
    req.temperature = _number(payload.get("temperature"), "temperature")
    req.top_p = _number(payload.get("top_p"), "top_p")
    req.stream = bool(_typed(payload.get("stream"), bool, "stream"))
    req.include_usage = req.stream  # Responses streams always end with usage (response.completed)
    req.store = _typed(payload.get("store"), bool, "store")
    req.previous_response_id = _typed(payload.get("previous_response_id"), str, "previous_response_id")
    req.user = _typed(payload.get("user"), str, "user")
    req.metadata = _typed(payload.get("metadata"), dict, "metadata")
    return req


def _reasoning_input(part: ir.ReasoningPart) -> dict[str, Any] | None:
    # Anthropic thinking (signed or redacted) cannot be verified by OpenAI: dropped, as OpenAI
    # reasoning without encrypted content or an id (nothing the upstream could use).
    if part.signature or part.redacted or not (part.encrypted or part.id):
        return None
    item: dict[str, Any] = {"type": "reasoning"}
    if part.id:
        item["id"] = part.id
    item["summary"] = [{"type": "summary_text", "text": s} for s in part.summary]
    if part.text:
        item["content"] = [{"type": "reasoning_text", "text": part.text}]
    if part.encrypted:
        item["encrypted_content"] = part.encrypted
    return item


def _input_items(request: ir.Request) -> list[dict[str, Any]]:
    names, custom = namespace_map(request.tools), custom_names(request.tools)
    call_kinds: dict[str, str] = {}
    refs: dict[int, list[dict[str, Any]]] = {}
    for ref in request.extra.get("item_references") or []:
        if isinstance(ref, dict) and isinstance(ref.get("id"), str):
            refs.setdefault(int(ref.get("position") or 0), []).append({"type": "item_reference", "id": ref["id"]})
    items: list[dict[str, Any]] = []
    for index, message in enumerate(request.messages):
        items.extend(refs.pop(index, ()))
        current: dict[str, Any] | None = None  # the message item text parts are added to
        for part in message.parts:
            if message.role == "assistant" and isinstance(part, ir.TextPart):
                if current is None:
                    current = {"type": "message", "role": "assistant", "content": []}
                    items.append(current)
                current["content"].append({"type": "output_text", "text": part.text, "annotations": part.annotations})
                continue
            if isinstance(part, ir.ToolResultPart):
                current = None
                texts = [p.text for p in part.content if isinstance(p, ir.TextPart)]
                output: Any = "".join(texts) if len(texts) == len(part.content) else [
                    x for x in map(input_part, part.content) if x is not None]
                custom_call = call_kinds.get(part.call_id) == "custom"
                items.append({"type": "custom_tool_call_output" if custom_call else "function_call_output",
                              "call_id": part.call_id, "output": output})
                continue
            if message.role == "assistant":
                current = None
                if isinstance(part, ir.ReasoningPart):
                    item = _reasoning_input(part)
                elif isinstance(part, ir.ToolCallPart):
                    item = tool_call_item(part, names, custom)
                    if item is not None:
                        call_kinds[part.id] = "custom" if item["type"] == "custom_tool_call" else "function"
                else:
                    item = None  # images, files, audio in an assistant turn: Responses has no place
                if item is not None:
                    items.append(item)
                continue
            converted = input_part(part)
            if converted is None:
                continue
            if current is None:
                role = "user" if message.role == "tool" else message.role
                current = {"type": "message", "role": role, "content": []}
                items.append(current)
            current["content"].append(converted)
    for rest in refs.values():
        items.extend(rest)
    return items


def request_from_ir(request: ir.Request) -> dict[str, Any]:
    """IR -> a Responses request body for an upstream."""
    body: dict[str, Any] = {"model": request.model}
    if request.system:
        body["instructions"] = "\n\n".join(p.text for p in request.system)
    body["input"] = _input_items(request)
    if request.tools:
        body["tools"] = tools_from_ir(request.tools)
    choice = tool_choice_from_ir(request)
    if choice is not None:
        body["tool_choice"] = choice
    for key in ("parallel_tool_calls", "max_output_tokens", "temperature", "top_p", "store",
                "previous_response_id", "user", "metadata"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    text = dict(request.extra["text"]) if isinstance(request.extra.get("text"), dict) else {}
    if request.response_format is not None:
        text["format"] = text_format(request.response_format)
    if text:
        body["text"] = text
    reasoning = reasoning_from_ir(request.reasoning)
    if reasoning is not None:
        body["reasoning"] = reasoning
    own_extra = request.source_format in (None, "responses")
    for key in _PASS_EXTRA:
        if key in request.extra and (own_extra or key in _SHARED_EXTRA):
            body[key] = request.extra[key]
    if request.extra.get("service_tier") in SERVICE_TIERS:
        body["service_tier"] = request.extra["service_tier"]
    options = request.extra.get("stream_options")
    if request.stream and isinstance(options, dict) and "include_obfuscation" in options:
        body["stream_options"] = {"include_obfuscation": options["include_obfuscation"]}
    include = [x for x in request.extra.get("include") or () if isinstance(x, str)]
    if request.store is False and reasoning is not None and ENCRYPTED_REASONING not in include:
        include.append(ENCRYPTED_REASONING)  # without storage, reasoning only survives encrypted
    if include:
        body["include"] = include
    body["stream"] = request.stream
    return body


def response_to_ir(payload: dict[str, Any]) -> ir.Response:
    """A Responses `response` object (from an upstream) -> IR."""
    if not isinstance(payload, dict):
        raise fail("The response must be a JSON object.", None)
    created = payload.get("created_at")
    resp = ir.Response(id=str(payload.get("id") or ""), model=str(payload.get("model") or ""),
                       created=int(created) if isinstance(created, int | float) else 0)
    output = payload.get("output") or []
    last_type = None
    for i, item in enumerate(output if isinstance(output, list) else []):
        if not isinstance(item, dict):
            continue
        kind = last_type = item.get("type")
        if kind == "message":
            for c in item.get("content") or []:
                if isinstance(c, dict) and c.get("type") == "output_text":
                    resp.parts.append(ir.TextPart(str(c.get("text") or ""), annotations=list(c.get("annotations") or [])))
                elif isinstance(c, dict) and c.get("type") == "refusal":
                    resp.refusal = (resp.refusal or "") + str(c.get("refusal") or "")
        elif kind in ("function_call", "custom_tool_call"):
            custom = kind == "custom_tool_call"
            name = str(item.get("name") or "")
            if isinstance(item.get("namespace"), str) and item["namespace"]:
                name = join_namespace(item["namespace"], name)
            resp.parts.append(ir.ToolCallPart(
                id=str(item.get("call_id") or item.get("id") or ""), name=name,
                arguments=str(item.get("input" if custom else "arguments") or ""), kind="custom" if custom else "function"))
        elif kind == "reasoning":
            resp.parts.append(reasoning_from_item(item, f"output[{i}]"))
        elif isinstance(kind, str):
            resp.parts.append(ir.ToolCallPart(id=str(item.get("call_id") or item.get("id") or ""), name=kind,
                                              kind="builtin", raw=item))
    resp.stop_reason = stop_reason(payload.get("status"), payload.get("incomplete_details"), last_type)
    resp.usage, resp.reasoning_tokens = usage_to_ir(payload.get("usage"))
    return resp


def response_from_ir(response: ir.Response, request: ir.Request) -> dict[str, Any]:
    """IR -> a Responses `response` object for the caller (the official SDK parses it)."""
    rid = response_id(response.id)
    status, incomplete = status_from_ir(response.stop_reason)
    item_status = "incomplete" if status == "incomplete" else "completed"
    names, custom = namespace_map(request.tools), custom_names(request.tools)
    output: list[dict[str, Any]] = []
    texts: list[ir.TextPart] = []
    for i, part in enumerate([*response.parts, None]):
        if isinstance(part, ir.TextPart):
            texts.append(part)
            continue
        if texts:  # consecutive text parts form one message item
            output.append(message_item(item_id("msg", rid, i), texts, item_status))
            texts = []
        if isinstance(part, ir.ReasoningPart):
            output.append(reasoning_item(part, part.id or item_id("rs", rid, i)))
        elif isinstance(part, ir.ToolCallPart):
            item = output_call_item(part, rid, i, names, custom)
            if item is not None:
                output.append(item)
    if response.refusal:
        last = output[-1] if output and output[-1]["type"] == "message" else None
        if last is None:
            output.append(message_item(item_id("msg", rid, len(response.parts)), [], item_status, response.refusal))
        else:
            last["content"].append({"type": "refusal", "refusal": response.refusal})
    obj = response_object(request, rid, response.model or request.model, response.created, status)
    obj["output"], obj["incomplete_details"] = output, incomplete
    if status == "failed":
        obj["error"] = {"code": "server_error", "message": "The upstream model failed to complete the response."}
    obj["usage"] = usage_from_ir(response.usage, response.reasoning_tokens)
    return obj
