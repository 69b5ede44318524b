"""Anthropic mode of the fake provider: ``POST /v1/messages`` (also behind ``/s/<scenarios>``).

Faithful to https://docs.anthropic.com/en/api/messages (message object) and
https://docs.anthropic.com/en/api/messages-streaming (event sequence), with Anthropic's error
shape ``{"type": "error", "error": {"type", "message"}, "request_id"}``
(https://docs.anthropic.com/en/api/errors):

* auth by ``x-api-key`` or ``Authorization: Bearer`` (what the official SDK 2.x sends); without
  a key 401 ``authentication_error``; the ``anthropic-version`` header is required (400);
* the request is validated like the real API where a gateway bug would show: ``max_tokens``
  required, roles only ``user``/``assistant`` (a ``system`` role in ``messages`` is a 400, the
  gateway must fold it), non-empty content and text blocks, every ``tool_result`` answering a
  ``tool_use`` of the previous turn and every ``tool_use`` answered in the next turn, thinking
  budget >= 1024 and < max_tokens, no temperature other than 1 and no forced tool with thinking;
* the reply reuses :mod:`fakeprovider.content`: the chat reply text, ``tool_use`` blocks with
  input generated from ``input_schema`` (when custom tools are given, tool_choice is not
  ``none`` and the last user turn is not tool results), and a ``thinking`` block with a fake
  deterministic signature when thinking is ``enabled`` or ``adaptive``;
* scenarios as in chat; errors are Anthropic-shaped (429 ``rate_limit_error``, 500/503
  ``api_error``, 401 ``authentication_error``) and ``529`` (``overloaded_error``) is understood
  here in addition to the common scenario items.

Input tokens (:func:`count_messages_prompt_tokens`), with the tokenizer of :mod:`fakeprovider.tokens`:
the system prompt counts as one message (its text + 3); each message is 3 + its blocks: text
-> ``count_tokens(text)``, image and document -> 85, tool_use -> tokens of its name + of the
compact JSON of its input, tool_result -> its text (images 85), thinking -> its text; each
tool definition -> ``count_tokens(json.dumps(tool without cache_control, separators=(",", ":")))``.
A plain ``{"role": "user", "content": "Hi"}`` request so counts exactly as in chat mode.
``cached=N`` reports ``cache_read_input_tokens = min(N, total)`` and ``input_tokens = total - that``
(Anthropic's input_tokens excludes cache reads).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from . import content as gen
from .common import COUNTER, Rules, cut_events, read_request, screen, send_whole, write_events
from .scenarios import ERROR_ITEMS, Scenario, parse_scenarios
from .tokens import IMAGE_TOKENS, PER_MESSAGE_TOKENS, count_tokens

__all__ = ["ROUTES", "AnthropicError", "Plan", "count_messages_prompt_tokens", "message_body", "plan_message",
           "stream_events"]

_JSON = "application/json"
_VERSIONED_TOOL = re.compile(r"_\d{8}$")  # server/client tool versions: web_search_20250305, bash_20250124


class AnthropicError(Exception):
    """An error answered in Anthropic's shape."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message

    def response(self, request_id: str, headers: dict[str, str] | None = None) -> web.Response:
        body = {"type": "error", "error": {"type": self.type, "message": self.message}, "request_id": request_id}
        return web.Response(body=orjson.dumps(body), status=self.status, content_type=_JSON,
                            headers={"request-id": request_id, **(headers or {})})


def _invalid(message: str) -> AnthropicError:
    return AnthropicError(400, "invalid_request_error", message)


_FORCED = {
    401: AnthropicError(401, "authentication_error", "invalid x-api-key"),
    429: AnthropicError(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit (fake)."),
    500: AnthropicError(500, "api_error", "Internal server error"),
    503: AnthropicError(503, "api_error", "Service unavailable"),
    529: AnthropicError(529, "overloaded_error", "Overloaded"),
}


def parse_anthropic_scenarios(spec: str) -> Scenario:
    """The common scenario list plus ``529``; the first error item wins, as in chat."""
    items = [item.strip() for item in spec.split(",")]
    sc = parse_scenarios(",".join(i for i in items if i != "529"))
    first = next((i for i in items if i == "529" or i in ERROR_ITEMS), None)
    return dataclasses.replace(sc, error=529) if first == "529" else sc


# --------------------------------------------------------------------------
# Token counting
# --------------------------------------------------------------------------
def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return count_tokens(block)
    if not isinstance(block, dict):
        return 0
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return count_tokens(block["text"])
    if kind in ("image", "document"):
        return IMAGE_TOKENS
    if kind == "tool_use":
        return count_tokens(str(block.get("name") or "")) + count_tokens(_compact(block.get("input") or {}))
    if kind == "tool_result":
        inner = block.get("content")
        return sum(map(_block_tokens, inner)) if isinstance(inner, list) else _block_tokens(inner or "")
    if kind == "thinking" and isinstance(block.get("thinking"), str):
        return count_tokens(block["thinking"])
    return 0


def count_messages_prompt_tokens(body: dict[str, Any]) -> int:
    """Prompt tokens of a Messages request (the rules are in the module docstring)."""
    total = 0
    system = body.get("system")
    if system:
        total += PER_MESSAGE_TOKENS + (sum(map(_block_tokens, system)) if isinstance(system, list)
                                       else _block_tokens(system))
    for m in body.get("messages") or []:
        content = m.get("content") if isinstance(m, dict) else None
        total += PER_MESSAGE_TOKENS + (sum(map(_block_tokens, content)) if isinstance(content, list)
                                       else _block_tokens(content))
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            total += count_tokens(_compact({k: v for k, v in tool.items() if k != "cache_control"}))
    return total


# --------------------------------------------------------------------------
# Validation and the deterministic answer
# --------------------------------------------------------------------------
@dataclass(slots=True)
class Plan:
    """Everything needed to render one message, stream or not."""

    model: str
    input_tokens: int  # total, cache reads included
    blocks: list[dict[str, Any]] = field(default_factory=list)  # final content blocks
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    output_tokens: int = 0


def _blocks(content: Any) -> list[Any]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _validate_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise _invalid("messages: Field required")
    if not messages:
        raise _invalid("messages: at least one message is required")
    pending: set[str] = set()  # tool_use ids of the previous assistant turn
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise _invalid(f"messages.{i}: Input should be a valid dictionary")
        role = m.get("role")
        if role == "system":
            raise _invalid('messages: Unexpected role "system". The Messages API accepts a top-level `system` '
                           'parameter, not "system" as an input message role.')
        if role not in ("user", "assistant"):
            raise _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = m.get("content")
        if not isinstance(content, str | list):
            raise _invalid(f"messages.{i}.content: Input should be a valid string or list")
        if not content and not (role == "assistant" and i == len(messages) - 1):
            raise _invalid(f"messages.{i}: all messages must have non-empty content except for the optional "
                           "final assistant message")
        blocks = _blocks(content)
        answered: set[str] = set()
        uses: set[str] = set()
        for j, b in enumerate(blocks):
            if not isinstance(b, dict) or not isinstance(b.get("type"), str):
                raise _invalid(f"messages.{i}.content.{j}.type: Field required")
            kind = b["type"]
            if kind == "text" and (not isinstance(b.get("text"), str) or not b["text"]):
                raise _invalid("messages: text content blocks must be non-empty")
            if kind == "tool_use":
                if role != "assistant":
                    raise _invalid(f"messages.{i}.content.{j}: tool_use blocks may only appear in assistant turns")
                uses.add(str(b.get("id")))
            if kind == "tool_result":
                if role != "user":
                    raise _invalid(f"messages.{i}.content.{j}: tool_result blocks may only appear in user turns")
                tid = str(b.get("tool_use_id"))
                if tid not in pending:
                    raise _invalid(f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                                   f"blocks: {tid}. Each `tool_result` block must have a corresponding "
                                   "`tool_use` block in the previous message.")
                answered.add(tid)
        if pending - answered:
            missing = ", ".join(sorted(pending - answered))
            raise _invalid(f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
                           f"after: {missing}. Each `tool_use` block must have a corresponding `tool_result` "
                           "block in the next message.")
        pending = uses
    # A trailing assistant tool_use without results is a prefill: allowed.


def _custom_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _invalid("tools: Input should be a valid list")
    custom = []
    for i, t in enumerate(tools):
        if not isinstance(t, dict):
            raise _invalid(f"tools.{i}: Input should be a valid dictionary")
        kind = t.get("type")
        if kind not in (None, "custom"):
            if not isinstance(kind, str) or not _VERSIONED_TOOL.search(kind) and kind != "mcp_toolset":
                raise _invalid(f"tools.{i}.type: unknown tool type {kind!r}")
            continue  # server tools are never called by the fake
        if not isinstance(t.get("name"), str) or not t["name"]:
            raise _invalid(f"tools.{i}.custom.name: Field required")
        schema = t.get("input_schema")
        if not isinstance(schema, dict):
            raise _invalid(f"tools.{i}.custom.input_schema: Field required")
        if schema.get("type") != "object":
            raise _invalid(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
        custom.append(t)
    return custom


def _int(body: dict[str, Any], name: str, lo: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise _invalid(f"{name}: Input should be an integer greater than or equal to {lo}")
    return value


def _thinking(body: dict[str, Any], max_tokens: int) -> bool:
    thinking = body.get("thinking")
    if thinking is None:
        return False
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return False
    if kind == "adaptive":
        return True
    if kind != "enabled":
        raise _invalid("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
        raise _invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    if budget >= max_tokens:
        raise _invalid("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation "
                       "at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-"
                       "window-size")
    return True


def _reply_view(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as chat messages, for :func:`fakeprovider.content.reply_words`: images
    as ``image_url`` parts, user turns made only of tool results as ``tool`` messages."""
    view = []
    for m in messages:
        blocks = _blocks(m["content"])
        results_only = bool(blocks) and all(b.get("type") == "tool_result" for b in blocks)
        parts = [{"type": "image_url"} if b.get("type") == "image" else b for b in blocks]
        view.append({"role": "tool" if m["role"] == "user" and results_only else m["role"], "content": parts})
    return view


def _signature(text: str) -> str:
    return base64.b64encode(b"fake-signature:" + hashlib.sha256(text.encode()).digest()).decode()


def plan_message(body: Any, sc: Scenario) -> Plan:
    """Validate the request and compute the deterministic answer; raises AnthropicError (400)."""
    if not isinstance(body, dict):
        raise _invalid("Request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model: Field required")
    max_tokens = _int(body, "max_tokens", 1)
    if max_tokens is None:
        raise _invalid("max_tokens: Field required")
    messages = body.get("messages")
    _validate_messages(messages)
    system = body.get("system")
    if system is not None and not isinstance(system, str) and not (
            isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in system)):
        raise _invalid("system: Input should be a valid string or a list of text blocks")
    tools = _custom_tools(body)
    temperature = body.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, int | float)
                                    or not 0 <= temperature <= 1):
        raise _invalid("temperature: Input should be less than or equal to 1")
    choice = body.get("tool_choice")
    choice_type = choice.get("type") if isinstance(choice, dict) else None
    if choice is not None and choice_type not in ("auto", "any", "tool", "none"):
        raise _invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    thinking = _thinking(body, max_tokens)
    if thinking and temperature is not None and temperature != 1:
        raise _invalid("`temperature` may only be set to 1 when thinking is enabled. Please consult our "
                       "documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking")
    if thinking and choice_type in ("any", "tool"):
        raise _invalid("Thinking may not be enabled when tool_choice forces tool use.")

    plan = Plan(model=model, input_tokens=count_messages_prompt_tokens(body))
    view = _reply_view(messages)
    budget = max_tokens
    if thinking:
        text = "Fake thinking about: " + " ".join(gen.last_user_text(view).split()[:gen.DEFAULT_REPLY_WORDS])
        plan.blocks.append({"type": "thinking", "thinking": text, "signature": _signature(text)})
        plan.output_tokens += count_tokens(text)
        budget = max(budget - plan.output_tokens, 0)

    chosen: list[dict[str, Any]] = []
    if tools and choice_type != "none" and view[-1]["role"] != "tool" and not sc.notools:
        parallel = not (isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True)
        if choice_type == "tool":
            chosen = [t for t in tools if t["name"] == choice.get("name")]
            if not chosen:
                raise _invalid(f"tool_choice.name: no tool named {choice.get('name')!r} in tools")
        elif choice_type == "any" and parallel and len(tools) >= 2:
            chosen = tools[:2]
        else:
            chosen = tools[:1]
    if chosen:
        for i, tool in enumerate(chosen):
            value = gen.json_from_schema(tool["input_schema"])
            args = value if isinstance(value, dict) else {}
            plan.blocks.append({"type": "tool_use", "id": f"toolu_fake_{i}", "name": tool["name"], "input": args})
            plan.output_tokens += count_tokens(tool["name"]) + count_tokens(_compact(args))
        plan.stop_reason = "tool_use"
        return plan

    words, truncated = gen.truncate_words(gen.reply_words(view, sc.words), budget)
    text = " ".join(words)
    stops = body.get("stop_sequences")
    if isinstance(stops, list):
        hits = [(text.find(s), s) for s in stops if isinstance(s, str) and s and s in text]
        if hits:
            at, plan.stop_sequence = min(hits)
            text, truncated = text[:at], False
            plan.stop_reason = "stop_sequence"
    if truncated:
        plan.stop_reason = "max_tokens"
    if text:
        plan.blocks.append({"type": "text", "text": text})
    plan.output_tokens += count_tokens(text)
    return plan


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------
def _usage(plan: Plan, sc: Scenario, output_tokens: int) -> dict[str, Any]:
    cached = min(sc.cached, plan.input_tokens)
    return {
        "input_tokens": plan.input_tokens - cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": output_tokens,
    }


def message_body(plan: Plan, mid: str, sc: Scenario) -> bytes:
    usage = _usage(plan, sc, plan.output_tokens)
    usage["cache_creation"] = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
    usage["service_tier"] = "standard"
    return orjson.dumps({
        "id": mid, "type": "message", "role": "assistant", "model": plan.model, "content": plan.blocks,
        "stop_reason": plan.stop_reason, "stop_sequence": plan.stop_sequence, "usage": usage,
    })


def _event(payload: dict[str, Any]) -> bytes:
    return b"event: " + payload["type"].encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _fragments(s: str, parts: int = 3) -> list[str]:
    size = max(1, -(-len(s) // parts))
    return [s[i:i + size] for i in range(0, len(s), size)]


def stream_events(plan: Plan, mid: str, sc: Scenario) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """SSE events split into (head, body, tail) so ``cut`` can drop half the body."""
    head = [_event({"type": "message_start", "message": {
        "id": mid, "type": "message", "role": "assistant", "model": plan.model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": _usage(plan, sc, 1),
    }})]
    body: list[bytes] = []
    for index, block in enumerate(plan.blocks):
        kind = block["type"]
        if kind == "thinking":
            start: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in re.findall(r"\S+\s*", block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "tool_use":
            start = {**block, "input": {}}
            # The real API opens with an empty partial_json, then streams the JSON in pieces.
            pieces = ["", *_fragments(_compact(block["input"]))]
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        else:
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in re.findall(r"\S+\s*", block["text"])]
        body.append(_event({"type": "content_block_start", "index": index, "content_block": start}))
        if index == 0:
            body.append(_event({"type": "ping"}))
        body.extend(_event({"type": "content_block_delta", "index": index, "delta": d}) for d in deltas)
        body.append(_event({"type": "content_block_stop", "index": index}))
    if sc.garbage and body:
        body.insert(1, b"event: content_block_delta\ndata: {not json\n\n")
    tail = [
        _event({"type": "message_delta",
                "delta": {"stop_reason": plan.stop_reason, "stop_sequence": plan.stop_sequence},
                "usage": _usage(plan, sc, plan.output_tokens)}),
        _event({"type": "message_stop"}),
    ]
    return head, body, tail


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------
async def _send_stream(request: web.Request, plan: Plan, mid: str, sc: Scenario, rid: str) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "request-id": rid})
    return await write_events(request, resp, cut_events(*stream_events(plan, mid, sc), sc), sc)


def _auth(request: web.Request) -> AnthropicError | None:
    # Classic clients send x-api-key; the current official SDK (2.x) sends the same key as
    # "Authorization: Bearer", which the API accepts too.
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    key = request.headers.get("x-api-key", "").strip() or (token.strip() if scheme.lower() == "bearer" else "")
    if not key:
        return AnthropicError(401, "authentication_error", "x-api-key header is required")
    if not request.headers.get("anthropic-version", "").strip():
        return _invalid("anthropic-version: header is required")
    return None


_BAD_JSON = _invalid("There was an error parsing the body of your request (fake): expected JSON.")


def _rules(rid: str) -> Rules:
    """Anthropic's auth and error shapes; every answer carries the request id."""

    def auth(request: web.Request) -> web.Response | None:
        failure = _auth(request)
        return None if failure is None else failure.response(rid)

    return Rules(
        scenario_error=lambda message: _invalid(message).response(rid),
        forced=lambda status: _FORCED[status].response(rid, {"retry-after": "1"} if status == 429 else None),
        auth=auth,
        bad_json=lambda: _BAD_JSON.response(rid),
        parse=parse_anthropic_scenarios,
    )


async def messages(request: web.Request) -> web.StreamResponse:
    body, bad_json = await read_request(request)
    n = next(request.app[COUNTER])
    rid = f"req_fake_{n}"
    sc = await screen(request, _rules(rid), bad_json)
    if isinstance(sc, web.Response):
        return sc
    if body is None:  # an empty body, answered as bad JSON
        return _BAD_JSON.response(rid)
    try:
        plan = plan_message(body, sc)
    except AnthropicError as exc:
        return exc.response(rid)
    mid = f"msg_fake_{n}"
    if body.get("stream") is True:
        return await _send_stream(request, plan, mid, sc, rid)
    return await send_whole(request, message_body(plan, mid, sc), sc, {"request-id": rid})


#: (method, path, handler) for server.make_app, which also mounts them under /s/{scenario}.
ROUTES = [("POST", "/v1/messages", messages)]
