"""IR -> an Anthropic Messages request body, for Anthropic upstreams.

https://docs.anthropic.com/en/api/messages. Anthropic is stricter than the other formats; the
choices made here so that any IR request is accepted:
- turns must alternate: consecutive same-role turns are merged, "tool" messages become user
  turns of tool_result blocks (which Anthropic wants first in their turn), and mid-conversation
  system/developer messages become a "System: ..." text block of the user turn they join
  (Anthropic has only the top-level `system`; https://github.com/Laisky/one-api/issues/350).
- thinking blocks are only sent back with their signature (Anthropic verifies it,
  https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#preserving-thinking-blocks);
  reasoning from other providers has none and is dropped from assistant turns.
- thinking is not sent when a tool is forced or when the last assistant tool-use turn has no
  thinking block (Anthropic rejects both); with thinking on, temperature/top_p/top_k are dropped
  (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#feature-compatibility).
- response_format is emulated with a forced tool named STRUCTURED_TOOL_PREFIX + name, whose
  input the decoders turn back into the answer text: `output_config.format` exists only on
  recent models and not on every Anthropic-compatible upstream, a forced tool works everywhere.
- Request.extra: only PASSTHROUGH_KEYS (fields an Anthropic caller sent) are copied.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson

from relay import ir
from relay.converters.messages_stream import STRUCTURED_TOOL_PREFIX

__all__ = [
    "DATE_SUFFIX",
    "DEFAULT_MAX_TOKENS",
    "PASSTHROUGH_KEYS",
    "SERVER_BLOCK_TYPES",
    "fold_system_messages",
    "is_anthropic_server_item",
    "request_from_ir",
    "structured_tool_name",
    "tool_input",
]

#: Anthropic requires max_tokens; used when the caller's format left it out.
DEFAULT_MAX_TOKENS = 4096
#: Thinking budget per reasoning effort (the API minimum is 1024).
EFFORT_BUDGET = {"low": 1024, "medium": 4096, "high": 16000, "xhigh": 32000, "max": 32000}
#: Top-level request fields an Anthropic caller may send that the IR has no field for; they go
#: to Request.extra and are the only extra keys request_from_ir passes upstream.
PASSTHROUGH_KEYS = (
    "output_config", "context_management", "service_tier", "container", "mcp_servers", "cache_control",
    "inference_geo", "speed", "diagnostics",
)
DATE_SUFFIX = re.compile(r"_\d{8}$")  # server tool versions: web_search_20250305, bash_20250124
#: Content blocks of tools that ran at Anthropic (plus every `*_tool_result`).
SERVER_BLOCK_TYPES = frozenset({"server_tool_use", "mcp_tool_use", "mcp_tool_result", "container_upload"})
_UNSAFE_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def _data_url(url: str) -> tuple[str, str] | None:
    """(media_type, base64 data) of a base64 data: URL."""
    head, sep, data = url.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        return None
    return head[5:-7].split(";")[0] or "application/octet-stream", data


def _source(url: str | None, data: str | None, media_type: str | None, param: str) -> dict[str, Any]:
    if data:
        return {"type": "base64", "media_type": media_type or "application/octet-stream", "data": data}
    if url and url.startswith("data:"):
        parsed = _data_url(url)
        if parsed is None:
            raise ir.ConversionError("only base64 data: URLs can be sent to this upstream", param)
        return {"type": "base64", "media_type": parsed[0], "data": parsed[1]}
    if url:
        return {"type": "url", "url": url}
    raise ir.ConversionError("the content part has neither data nor a URL", param)


def _with_cache(block: dict[str, Any], cache: ir.CacheControl | None) -> dict[str, Any]:
    if cache:
        block["cache_control"] = dict(cache)
    return block


def _content_block(p: ir.TextPart | ir.ImagePart | ir.FilePart, param: str) -> dict[str, Any] | None:
    if isinstance(p, ir.TextPart):
        # Anthropic rejects empty text blocks ("text content blocks must be non-empty").
        return _with_cache({"type": "text", "text": p.text}, p.cache_control) if p.text else None
    if isinstance(p, ir.ImagePart):
        return _with_cache({"type": "image", "source": _source(p.url, p.data, p.media_type, param)}, p.cache_control)
    media = p.media_type or ""
    if p.file_id:
        block: dict[str, Any] = {"type": "document", "source": {"type": "file", "file_id": p.file_id}}
    elif media.startswith("image/"):
        return _with_cache({"type": "image", "source": _source(p.url, p.data, media, param)}, p.cache_control)
    elif media.startswith("text/") and p.data:
        try:
            text = base64.b64decode(p.data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ir.ConversionError("a text document is not valid base64 UTF-8", param) from None
        block = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": text}}
    else:
        block = {"type": "document", "source": _source(p.url, p.data, media or "application/pdf", param)}
    if p.filename:
        block["title"] = p.filename
    return _with_cache(block, p.cache_control)


def tool_input(call: ir.ToolCallPart) -> dict[str, Any]:
    if call.kind == "custom":  # free-text input of an OpenAI custom tool
        return {"input": call.arguments}
    try:
        value = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        return {}  # a model produced malformed JSON: Anthropic needs an object, never crash
    return value if isinstance(value, dict) else {}


def is_anthropic_server_item(raw: dict[str, Any] | None, *, block: bool) -> bool:
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        return False
    kind = raw["type"]
    if block:
        return kind in SERVER_BLOCK_TYPES or kind.endswith("_tool_result")
    return bool(DATE_SUFFIX.search(kind)) or kind in ("mcp_toolset", "custom")


def _assistant_blocks(msg: ir.Message, param: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for j, p in enumerate(msg.parts):
        if isinstance(p, ir.ReasoningPart):
            if p.signature:
                blocks.append({"type": "thinking", "thinking": p.text, "signature": p.signature})
            elif p.encrypted and p.redacted:
                blocks.append({"type": "redacted_thinking", "data": p.encrypted})
            # else: reasoning without an Anthropic signature cannot be verified: dropped.
        elif isinstance(p, ir.ToolCallPart):
            if p.kind == "builtin":
                if is_anthropic_server_item(p.raw, block=True):
                    blocks.append(dict(p.raw))  # type: ignore[arg-type]
                continue  # another provider's server-side call: nothing Anthropic can replay
            blocks.append(_with_cache({"type": "tool_use", "id": p.id, "name": p.name, "input": tool_input(p)},
                                      p.cache_control))
        elif isinstance(p, ir.TextPart):
            block = _content_block(p, f"{param}.parts.{j}")
            if block is not None:
                blocks.append(block)
        # images, files and audio cannot appear in an assistant turn
    return blocks


def _user_blocks(msg: ir.Message, param: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for j, p in enumerate(msg.parts):
        path = f"{param}.parts.{j}"
        if isinstance(p, ir.ToolResultPart):
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": p.call_id}
            content = [b for k, c in enumerate(p.content) if (b := _content_block(c, f"{path}.content.{k}"))]
            if content:
                result["content"] = content
            if p.is_error:
                result["is_error"] = True
            blocks.append(_with_cache(result, p.cache_control))
        elif isinstance(p, ir.TextPart | ir.ImagePart | ir.FilePart):
            block = _content_block(p, path)
            if block is not None:
                blocks.append(block)
        elif isinstance(p, ir.AudioPart):
            raise ir.ConversionError("audio input is not supported by Anthropic models", path)
    return blocks


def _messages_out(messages: list[ir.Message]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        param = f"messages.{i}"
        if msg.role in ("system", "developer"):
            # Anthropic only has the top-level system; a later instruction joins the user turn.
            text = "\n".join(p.text for p in msg.parts if isinstance(p, ir.TextPart) and p.text)
            role, blocks = "user", [{"type": "text", "text": f"System: {text}"}] if text else []
        elif msg.role == "assistant":
            role, blocks = "assistant", _assistant_blocks(msg, param)
        else:  # user and tool
            role, blocks = "user", _user_blocks(msg, param)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":  # tool results must open their turn (stable sort)
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return turns


def structured_tool_name(name: str | None) -> str:
    """The reserved tool name that emulates a response_format named `name`."""
    clean = _UNSAFE_NAME.sub("_", name or "") or "response"
    return (STRUCTURED_TOOL_PREFIX + clean)[:64]


def _tool_out(tool: ir.ToolDef) -> dict[str, Any] | None:
    if tool.kind == "builtin":
        if is_anthropic_server_item(tool.raw, block=False):
            return dict(tool.raw)  # type: ignore[arg-type]
        if (tool.builtin_type or "").startswith("web_search"):
            return {"type": "web_search_20250305", "name": "web_search"}
        return None  # another provider's builtin (code_interpreter, file_search...): no equivalent
    item: dict[str, Any] = {}
    if isinstance(tool.raw, dict) and "input_schema" in tool.raw:
        item.update(tool.raw)  # Anthropic-only keys (defer_loading, input_examples...)
    item["name"] = tool.name
    if tool.description:
        item["description"] = tool.description
    if tool.kind == "custom" and tool.parameters is None:
        item["input_schema"] = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
    else:
        item["input_schema"] = tool.parameters or {"type": "object", "properties": {}}
    return _with_cache(item, tool.cache_control)


def _thinking_out(request: ir.Request, max_tokens: int) -> dict[str, Any] | None:
    r = request.reasoning
    if r is None:
        return None
    if r.enabled is False or (r.enabled is None and r.effort in (None, "none", "minimal")):
        return {"type": "disabled"} if r.enabled is False else None
    raw = request.extra.get("thinking")
    if isinstance(raw, dict) and raw.get("type") not in ("enabled", "disabled") and r.budget_tokens is None:
        return dict(raw)  # adaptive, from an Anthropic caller
    if r.budget_tokens is not None:
        budget = r.budget_tokens
    elif r.effort in EFFORT_BUDGET:
        budget = EFFORT_BUDGET[r.effort]
    else:
        budget = max(1024, min(max_tokens // 2, 16000))
    budget = min(budget, max_tokens - 1)  # must be >= 1024 and < max_tokens
    if budget < 1024:
        return None  # max_tokens too small for any thinking
    thinking: dict[str, Any] = {"type": "enabled", "budget_tokens": budget}
    if isinstance(raw, dict) and isinstance(raw.get("display"), str):
        thinking["display"] = raw["display"]
    return thinking


def request_from_ir(request: ir.Request) -> dict[str, Any]:
    max_tokens = request.max_output_tokens if request.max_output_tokens is not None else DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {"model": request.model, "max_tokens": max_tokens}
    system = [_with_cache({"type": "text", "text": p.text}, p.cache_control) for p in request.system if p.text]
    if system:
        body["system"] = system
    messages = _messages_out(request.messages)
    body["messages"] = messages

    tools = [t for t in map(_tool_out, request.tools) if t is not None]
    choice = request.tool_choice
    tool_choice: dict[str, Any] | None = None
    if choice is not None:
        tool_choice = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"},
                       "tool": {"type": "tool", "name": choice.name or ""}}[choice.mode]
    fmt = request.response_format
    if fmt is not None and fmt.type in ("json_schema", "json_object"):
        name = structured_tool_name(fmt.name)
        schema = fmt.schema if fmt.type == "json_schema" and isinstance(fmt.schema, dict) else {"type": "object"}
        others = bool(tools)
        tools.append({"name": name, "input_schema": schema, "description": fmt.description or (
            "Give your final answer by calling this tool once; its input is the JSON answer.")})
        mode = tool_choice["type"] if tool_choice is not None else "auto"
        if others and mode in ("auto", "any"):
            tool_choice = {"type": "any"}  # call a real tool, or answer through the answer tool
        elif not (others and mode == "tool"):
            tool_choice = {"type": "tool", "name": name}  # no other tool may be called: force the answer
    if tools:
        body["tools"] = tools
        if request.parallel_tool_calls is False and (tool_choice is None or tool_choice["type"] != "none"):
            tool_choice = {**(tool_choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if tool_choice is not None:
            body["tool_choice"] = tool_choice

    thinking = _thinking_out(request, max_tokens)
    if thinking is not None and thinking["type"] != "disabled":
        last = next((t for t in reversed(messages) if t["role"] == "assistant"), None)
        forced = tool_choice is not None and tool_choice["type"] in ("any", "tool")
        # With budgeted thinking the turn that made the pending tool calls must start with its
        # thinking block; adaptive thinking may legitimately skip it.
        unsigned_loop = (
            thinking["type"] == "enabled" and last is not None
            and any(b["type"] == "tool_use" for b in last["content"])
            and last["content"][0]["type"] not in ("thinking", "redacted_thinking")
        )
        if forced or unsigned_loop:
            thinking = None  # Anthropic would reject the request (see the module docstring)
    if thinking is not None:
        body["thinking"] = thinking
    if thinking is None or thinking["type"] == "disabled":
        if request.temperature is not None:
            body["temperature"] = min(max(float(request.temperature), 0.0), 1.0)  # OpenAI allows up to 2
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.top_k is not None:
            body["top_k"] = request.top_k
    stops = [s for s in request.stop if s.strip()]  # whitespace-only stop sequences are rejected
    if stops:
        body["stop_sequences"] = stops
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if request.stream:
        body["stream"] = True
    own_extra = request.source_format in (None, "messages")
    for key in PASSTHROUGH_KEYS:
        if key in request.extra and (own_extra or key == "service_tier"):
            body[key] = request.extra[key]
    if body.get("service_tier") not in (None, "auto", "standard_only"):
        del body["service_tier"]  # an OpenAI service tier ("flex", "default"...) means nothing here
    return body


def fold_system_messages(payload: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic request body with mid-conversation system/developer messages folded into the
    neighbouring user turn as a "System: ..." text block; everything else untouched.

    For the pass-through path (caller and upstream both speak Messages): Claude Code sends such
    messages and Anthropic answers 400 "Unexpected role system"
    (https://github.com/Laisky/one-api/issues/350). Returns `payload` itself when nothing to fold.
    """
    messages = payload.get("messages")
    if not isinstance(messages, list) or not any(
            isinstance(m, dict) and m.get("role") in ("system", "developer") for m in messages):
        return payload
    out: list[Any] = []
    folded_at: set[int] = set()  # indexes in `out` of system-only turns still waiting for a user turn

    def blocks(content: Any) -> list[Any]:
        return [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])

    for m in messages:
        is_system = isinstance(m, dict) and m.get("role") in ("system", "developer")
        if is_system:
            content = m.get("content")
            parts = blocks(content)
            texts = [b for b in parts if isinstance(b, dict) and isinstance(b.get("text"), str) and b["text"]]
            if not texts:
                continue
            block: dict[str, Any] = {"type": "text", "text": "System: " + "\n".join(b["text"] for b in texts)}
            cache = next((b["cache_control"] for b in reversed(texts) if b.get("cache_control")), None)
            m = {"role": "user", "content": [_with_cache(block, cache)]}
        prev = out[-1] if out else None
        mergeable = isinstance(prev, dict) and isinstance(m, dict) and prev.get("role") == m.get("role") == "user"
        if mergeable and (is_system or len(out) - 1 in folded_at):
            merged = blocks(prev["content"]) + blocks(m["content"])  # type: ignore[index]
            merged.sort(key=lambda b: not (isinstance(b, dict) and b.get("type") == "tool_result"))
            out[-1] = {**prev, "content": merged}  # type: ignore[dict-item]
            if not is_system:
                folded_at.discard(len(out) - 1)  # the system text found its user turn
        else:
            out.append(m)
            if is_system:
                folded_at.add(len(out) - 1)
    return {**payload, "messages": out}
