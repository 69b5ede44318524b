"""Shared pieces of the OpenAI Responses converter (`responses`, `responses_stream`): output item
builders, the echoed response object, usage and stop-reason mapping, tool and reasoning encoding.

References: https://platform.openai.com/docs/api-reference/responses/object and
https://platform.openai.com/docs/api-reference/responses/create. The design decisions (namespace
flattening, opaque builtin items, packed Anthropic thinking) are explained in `responses`.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from relay import ir

# Output item types the Responses API defines besides message/function_call/custom_tool_call/
# reasoning (https://platform.openai.com/docs/api-reference/responses/object#responses/object-output),
# plus input-only item types: a builtin ToolCallPart whose raw item has one of these types is
# re-emitted verbatim; anything else (e.g. an Anthropic server_tool_use) is not Responses-shaped.
RESPONSES_ITEM_TYPES = frozenset({
    "file_search_call", "web_search_call", "computer_call", "computer_call_output", "image_generation_call",
    "code_interpreter_call", "local_shell_call", "local_shell_call_output", "shell_call", "shell_call_output",
    "apply_patch_call", "apply_patch_call_output", "mcp_call", "mcp_list_tools", "mcp_approval_request",
    "mcp_approval_response", "tool_search_call", "tool_search_output", "compaction", "program",
    "program_output", "additional_tools", "compaction_trigger",
})
RESPONSES_TOOL_TYPES = frozenset({
    "function", "custom", "namespace", "web_search", "web_search_2025_08_26", "web_search_preview",
    "web_search_preview_2025_03_11", "file_search", "code_interpreter", "image_generation", "local_shell",
    "shell", "mcp", "computer", "computer_use", "computer_use_preview", "apply_patch", "tool_search",
    "programmatic_tool_calling",
})
SERVICE_TIERS = frozenset({"auto", "default", "flex", "priority", "scale"})
_PACK_THINKING = "oneapi:thinking:"
_PACK_REDACTED = "oneapi:redacted:"


def fail(message: str, param: str | None) -> ir.ConversionError:
    return ir.ConversionError(message, param)


def join_namespace(namespace: str, name: str) -> str:
    """The flat IR name of tool `name` inside `namespace` (why: relay.converters.responses)."""
    return f"{namespace}{name}" if namespace.endswith("__") else f"{namespace}__{name}"


def namespace_map(tools: list[ir.ToolDef]) -> dict[str, tuple[str, str]]:
    """Flat tool name -> (namespace, inner name), from the request's namespace tools."""
    out: dict[str, tuple[str, str]] = {}
    for tool in tools:
        if tool.builtin_type == "namespace" and tool.raw and isinstance(tool.raw.get("tools"), list):
            for sub in tool.raw["tools"]:
                if isinstance(sub, dict) and isinstance(sub.get("name"), str):
                    out[join_namespace(tool.name, sub["name"])] = (tool.name, sub["name"])
    return out


def item_id(prefix: str, seed: str, index: int) -> str:
    """A deterministic item id (`msg_...`, `fc_...`, `rs_...`) unique per response and position."""
    return f"{prefix}_{hashlib.blake2b(f'{seed}:{index}'.encode(), digest_size=20).hexdigest()}"


def data_url(media_type: str | None, data: str) -> str:
    return f"data:{media_type or 'application/octet-stream'};base64,{data}"


def pack_reasoning(part: ir.ReasoningPart) -> str | None:
    """The `encrypted_content` to show a Responses caller for `part` (see the module docstring)."""
    if part.redacted and part.encrypted:
        return _PACK_REDACTED + part.encrypted
    if part.signature:
        blob = orjson.dumps({"t": part.text, "s": part.signature})
        return _PACK_THINKING + base64.urlsafe_b64encode(blob).decode()
    return part.encrypted


def reasoning_from_item(item: dict[str, Any], path: str = "output") -> ir.ReasoningPart:
    summary = item.get("summary") or []
    content = item.get("content") or []
    if not isinstance(summary, list) or not isinstance(content, list):
        raise fail(f"Invalid '{path}': summary and content must be arrays.", f"{path}.summary")
    encrypted = item.get("encrypted_content")
    part = ir.ReasoningPart(
        text="".join(c["text"] for c in content if isinstance(c, dict) and isinstance(c.get("text"), str)),
        encrypted=encrypted if isinstance(encrypted, str) else None,
        id=item.get("id") if isinstance(item.get("id"), str) else None,
        summary=[s["text"] for s in summary if isinstance(s, dict) and isinstance(s.get("text"), str)],
    )
    if part.encrypted and part.encrypted.startswith(_PACK_THINKING):
        try:
            packed = orjson.loads(base64.urlsafe_b64decode(part.encrypted[len(_PACK_THINKING):]))
            part.text, part.signature, part.encrypted = str(packed["t"]), str(packed["s"]), None
        except (ValueError, KeyError, TypeError):
            raise fail(f"Invalid '{path}.encrypted_content'.", f"{path}.encrypted_content") from None
    elif part.encrypted and part.encrypted.startswith(_PACK_REDACTED):
        part.encrypted, part.redacted = part.encrypted[len(_PACK_REDACTED):], True
    return part


def reasoning_item(part: ir.ReasoningPart, rid: str) -> dict[str, Any]:
    """A reasoning output item. Text without a summary is shown as the summary (what Codex and
    the SDK display); with a summary it goes to `content` as reasoning_text."""
    summary = part.summary or ([part.text] if part.text else [])
    item: dict[str, Any] = {"id": rid, "type": "reasoning", "summary": [{"type": "summary_text", "text": s} for s in summary]}
    if part.summary and part.text:
        item["content"] = [{"type": "reasoning_text", "text": part.text}]
    encrypted = pack_reasoning(part)
    if encrypted is not None:
        item["encrypted_content"] = encrypted
    return item


def usage_to_ir(usage: Any) -> tuple[ir.Usage, int]:
    if not isinstance(usage, dict):
        return ir.Usage(), 0
    inp = usage.get("input_tokens_details") or {}
    out = usage.get("output_tokens_details") or {}
    return ir.Usage(
        prompt_tokens=int(usage.get("input_tokens") or 0),
        completion_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=int(inp.get("cached_tokens") or 0),
        cache_write_tokens=int(inp.get("cache_write_tokens") or 0),
    ), int(out.get("reasoning_tokens") or 0)


def usage_from_ir(usage: ir.Usage, reasoning_tokens: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens + usage.cache_write_1h_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def stop_reason(status: Any, incomplete: Any, last_item_type: str | None) -> ir.StopReason:
    if status == "incomplete":
        reason = incomplete.get("reason") if isinstance(incomplete, dict) else None
        return "content_filter" if reason == "content_filter" else "length"
    if status in ("failed", "cancelled"):
        return "error"
    return "tool_calls" if last_item_type in ("function_call", "custom_tool_call") else "stop"


def status_from_ir(reason: ir.StopReason) -> tuple[str, dict[str, Any] | None]:
    if reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return ("failed", None) if reason == "error" else ("completed", None)


def input_part(part: ir.Part) -> dict[str, Any] | None:
    """An IR content part as a Responses input content part (None: not expressible)."""
    if isinstance(part, ir.TextPart):
        return {"type": "input_text", "text": part.text}
    if isinstance(part, ir.ImagePart):
        url = part.url or (data_url(part.media_type, part.data) if part.data else None)
        return {"type": "input_image", "image_url": url, "detail": part.detail or "auto"} if url else None
    if isinstance(part, ir.FilePart):
        if part.file_id and (part.media_type or "").startswith("image/"):
            return {"type": "input_image", "file_id": part.file_id, "detail": "auto"}
        out: dict[str, Any] = {"type": "input_file"}
        if part.file_id:
            out["file_id"] = part.file_id
        elif part.data is not None:
            out["file_data"] = data_url(part.media_type, part.data) if part.media_type else part.data
            # The API needs a filename with inline data.
            out["filename"] = part.filename or ("document.pdf" if part.media_type == "application/pdf" else "file")
        elif part.url:
            out["file_url"] = part.url
        if part.filename:
            out["filename"] = part.filename
        return out
    if isinstance(part, ir.AudioPart):
        return {"type": "input_audio", "input_audio": {"data": part.data, "format": part.format}}
    return None


def tool_call_item(part: ir.ToolCallPart, names: dict[str, tuple[str, str]], custom: set[str]) -> dict[str, Any] | None:
    """A function_call / custom_tool_call item (no item id, no status), or a raw builtin item."""
    if part.kind == "builtin":
        raw = part.raw
        return raw if raw is not None and raw.get("type") in RESPONSES_ITEM_TYPES else None
    is_custom = part.kind == "custom" or part.name in custom
    item: dict[str, Any] = {"type": "custom_tool_call" if is_custom else "function_call", "call_id": part.id}
    if part.name in names:
        item["namespace"], item["name"] = names[part.name]
    else:
        item["name"] = part.name
    item["input" if is_custom else "arguments"] = unwrap_custom_input(part.arguments) if is_custom else part.arguments
    return item


def unwrap_custom_input(arguments: str) -> str:
    """The free-text input of a custom tool call. Upstreams without custom tools (Anthropic)
    get them as a function taking `{"input": string}` (see messages_upstream.tool_input), so
    their calls arrive as that JSON: the caller must get the bare text back."""
    if arguments.lstrip().startswith("{"):
        try:
            value = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return arguments
        if isinstance(value, dict) and list(value) == ["input"] and isinstance(value["input"], str):
            return value["input"]
    return arguments


def custom_names(tools: list[ir.ToolDef]) -> set[str]:
    return {t.name for t in tools if t.kind == "custom"}


def _flat(raw: dict[str, Any] | None, kind: str) -> bool:
    """Whether `raw` is a Responses tool item of `kind` (Chat nests it: {"type", "function": {...}})."""
    return raw is not None and raw.get("type") == kind and isinstance(raw.get("name"), str) and kind not in raw


def tools_from_ir(tools: list[ir.ToolDef]) -> list[dict[str, Any]]:
    covered = namespace_map(tools)
    out: list[dict[str, Any]] = []
    for tool in tools:
        raw = tool.raw
        if tool.kind == "builtin":
            if raw is not None and raw.get("type") in RESPONSES_TOOL_TYPES - {"function", "custom"}:
                out.append(raw)
            elif (tool.builtin_type or "").startswith("web_search"):  # e.g. Anthropic's web_search_20250305
                out.append({"type": "web_search"})
            continue  # other providers' server tools have no Responses counterpart
        if tool.name in covered:
            continue  # sent inside its namespace item
        if tool.kind == "custom":
            if _flat(raw, "custom"):
                out.append(raw)  # type: ignore[arg-type]
                continue
            item: dict[str, Any] = {"type": "custom", "name": tool.name}
            if tool.description:
                item["description"] = tool.description
            nested = raw.get("custom") if isinstance(raw, dict) else None  # a Chat custom tool
            if isinstance(nested, dict) and nested.get("format") is not None:
                item["format"] = nested["format"]
            out.append(item)
            continue
        fn = dict(raw) if _flat(raw, "function") else {}  # keeps defer_loading, output_schema, ...
        fn.update(type="function", name=tool.name)
        if tool.description is not None:
            fn["description"] = tool.description
        fn["parameters"] = tool.parameters if tool.parameters is not None else {"type": "object", "properties": {}}
        # Responses assumes strict when `strict` is absent; other formats default to non-strict.
        fn["strict"] = bool(tool.strict)
        out.append(fn)
    return out


def tool_choice_from_ir(request: ir.Request) -> Any:
    raw = request.extra.get("tool_choice")
    if isinstance(raw, dict) and ("mode" in raw or raw.get("type") not in ("function", "custom", "allowed_tools", None)):
        return raw  # a Responses-shaped choice the IR only approximates
    choice = request.tool_choice
    if choice is None:
        return None
    if choice.mode != "tool":
        return choice.mode
    names = namespace_map(request.tools)
    if choice.name in custom_names(request.tools):
        return {"type": "custom", "name": choice.name}
    return {"type": "function", "name": names[choice.name][1] if choice.name in names else choice.name}


def text_format(fmt: ir.ResponseFormat | None) -> dict[str, Any]:
    if fmt is None or fmt.type != "json_schema":
        return {"type": fmt.type if fmt else "text"}
    out: dict[str, Any] = {"type": "json_schema", "name": fmt.name or "response", "schema": fmt.schema or {}}
    if fmt.strict is not None:
        out["strict"] = fmt.strict
    if fmt.description is not None:
        out["description"] = fmt.description
    return out


def _effort_for_budget(budget: int) -> str:
    # Anthropic/Gemini thinking budgets -> OpenAI effort levels (rough equivalence).
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


def reasoning_from_ir(reasoning: ir.Reasoning | None) -> dict[str, Any] | None:
    if reasoning is None:
        return None
    effort = reasoning.effort
    if effort is None and reasoning.budget_tokens and reasoning.enabled is not False:
        effort = _effort_for_budget(reasoning.budget_tokens)
    out: dict[str, Any] = {}
    if effort is not None:
        out["effort"] = effort
    if reasoning.summary is not None:
        out["summary"] = reasoning.summary
    elif reasoning.enabled or reasoning.budget_tokens:
        out["summary"] = "auto"  # a thinking caller expects to see the reasoning text
    return out or None


def response_id(raw_id: str) -> str:
    """The caller-facing id: upstream `resp_` ids are kept, others get the `resp_` prefix."""
    if raw_id.startswith("resp_"):
        return raw_id
    return "resp_" + ("".join(ch for ch in raw_id if ch.isalnum()) or hashlib.blake2b(raw_id.encode()).hexdigest()[:32])


def response_object(request: ir.Request, rid: str, model: str, created: int, status: str) -> dict[str, Any]:
    """The response object without output/usage, echoing the request as the API does."""
    extra = request.extra
    reasoning = reasoning_from_ir(request.reasoning) or {}
    text: dict[str, Any] = {"format": text_format(request.response_format)}
    if isinstance(extra.get("text"), dict):
        text.update({k: v for k, v in extra["text"].items() if k != "format"})
    choice = tool_choice_from_ir(request)
    return {
        "id": rid, "object": "response", "created_at": created, "status": status,
        "background": bool(extra.get("background", False)), "error": None, "incomplete_details": None,
        "instructions": "\n\n".join(p.text for p in request.system) or None,
        "max_output_tokens": request.max_output_tokens, "max_tool_calls": extra.get("max_tool_calls"),
        "model": model, "output": [],
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "prompt_cache_key": extra.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": extra.get("safety_identifier"),
        "service_tier": extra["service_tier"] if extra.get("service_tier") in SERVICE_TIERS else "default",
        "store": request.store is not False, "temperature": 1.0 if request.temperature is None else request.temperature,
        "text": text, "tool_choice": "auto" if choice is None else choice, "tools": tools_from_ir(request.tools),
        "top_logprobs": extra.get("top_logprobs") or 0, "top_p": 1.0 if request.top_p is None else request.top_p,
        "truncation": extra.get("truncation") or "disabled", "usage": None, "user": request.user,
        "metadata": request.metadata or {},
    }


def message_item(mid: str, texts: list[ir.TextPart], status: str, refusal: str | None = None) -> dict[str, Any]:
    content: list[dict[str, Any]] = [
        {"type": "output_text", "text": t.text, "annotations": t.annotations, "logprobs": []} for t in texts]
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"id": mid, "type": "message", "status": status, "role": "assistant", "content": content}


def output_call_item(part: ir.ToolCallPart, rid: str, index: int, names: dict[str, tuple[str, str]],
                     custom: set[str], status: str = "completed") -> dict[str, Any] | None:
    """An output function_call (`fc_` id, status) / custom_tool_call (`ctc_` id) or builtin item."""
    item = tool_call_item(part, names, custom)
    if item is None or part.kind == "builtin":
        return item
    if item["type"] == "function_call":
        item["id"], item["status"] = item_id("fc", rid, index), status
    else:
        item["id"] = item_id("ctc", rid, index)
    return item
