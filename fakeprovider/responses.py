"""OpenAI Responses mode of the fake provider: ``POST /v1/responses`` (also behind ``/s/<scenarios>``).

Faithful to https://platform.openai.com/docs/api-reference/responses/create (request),
https://platform.openai.com/docs/api-reference/responses/object (response object) and
https://platform.openai.com/docs/api-reference/responses-streaming (event sequence):

* Bearer auth and OpenAI-shaped errors (401 ``invalid_api_key``, 400 ``invalid_request_error``
  naming ``param``), shared with chat mode through ``server._prelude``;
* validated where a gateway's conversion bug would show: ``model`` and ``input`` required, flat
  function tools (``tools[0].name``: a Chat-shaped ``{"function": {...}}`` tool is a 400), message
  content types by role (``output_text``/``refusal`` only in assistant messages, ``input_*`` only
  elsewhere), every ``function_call_output`` answering a ``function_call`` of the input (unless
  ``previous_response_id``), reasoning ``encrypted_content`` only as this fake issued it (OpenAI
  rejects content it cannot verify, e.g. an Anthropic signature), ``text.format`` json_schema with
  ``name`` and ``schema``, ``max_output_tokens >= 16``, known ``include`` values;
* the reply reuses :mod:`fakeprovider.content`: the chat reply text (cut at max_output_tokens ->
  status ``incomplete``), JSON from ``text.format``, ``function_call`` items (when function tools
  are given -- top level or inside a ``namespace`` -- tool_choice is not ``none`` and the input
  does not end with a tool output), and a ``reasoning`` item when ``reasoning`` is set (effort not
  ``none``): summary text when ``reasoning.summary`` is set, ``encrypted_content`` when
  ``include`` asks for ``reasoning.encrypted_content``;
* streams emit the documented event sequence with ``sequence_number`` from 0 (and an
  ``obfuscation`` field on deltas unless ``stream_options.include_obfuscation`` is false);
* scenarios as in chat: 401/429/500/503, timeout, ttfb, slow, cut, garbage, words, cached.

Tokens, with the tokenizer of :mod:`fakeprovider.tokens` (:func:`count_responses_prompt_tokens`):
the request is viewed as chat messages -- ``instructions`` as a first system message, a string
``input`` as one user message, then one message per input item: message items with their text
parts (input_text/output_text) and 85 per input_image, tool outputs as their text, any other item
(calls, reasoning, ...) just the 3-token overhead -- plus, per function tool (namespaced ones
too), ``count_tokens(json.dumps(tool without "type", separators=(",", ":")))``. A plain
``input: "Hi"`` request so counts exactly as the chat request ``[{"role":"user","content":"Hi"}]``.
Reasoning tokens = ``count_tokens`` of the reasoning text and are part of ``output_tokens``.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from . import content as gen
from .chat import BadRequest
from .common import COUNTER, cut_events, prelude, send_whole, write_events
from .scenarios import Scenario
from .tokens import count_chat_prompt_tokens, count_tokens

__all__ = ["ROUTES", "Plan", "chat_view", "count_responses_prompt_tokens", "plan_response", "response_body",
           "stream_events"]

#: Documented values of ``include`` (https://platform.openai.com/docs/api-reference/responses/create#responses-create-include).
INCLUDABLE = frozenset({
    "reasoning.encrypted_content", "message.output_text.logprobs", "message.input_image.image_url",
    "computer_call_output.output.image_url", "file_search_call.results", "web_search_call.results",
    "web_search_call.action.sources", "code_interpreter_call.outputs",
})
MIN_OUTPUT_TOKENS = 16  # the API rejects max_output_tokens below 16
ENCRYPTED_PREFIX = "fake-enc:"
_USER_CONTENT = frozenset({"input_text", "input_image", "input_file", "input_audio"})
_ASSISTANT_CONTENT = frozenset({"output_text", "refusal"})
_OUTPUTS = ("function_call_output", "custom_tool_call_output")


@dataclass(slots=True)
class Plan:
    """Everything needed to render one response, stream or not."""

    body: dict[str, Any]  # the request, echoed in the response object
    model: str
    prompt_tokens: int
    text: str | None = None  # the message text (None with function calls)
    pieces: list[str] = field(default_factory=list)  # stream deltas of `text`
    calls: list[dict[str, Any]] = field(default_factory=list)  # function_call items (without ids)
    reasoning: str | None = None  # reasoning text (a reasoning item is emitted when set)
    summary: bool = False  # show `reasoning` as the item's summary
    encrypted: bool = False  # include encrypted_content
    incomplete: bool = False
    completion_tokens: int = 0  # output tokens, reasoning included
    reasoning_tokens: int = 0


def _bad(param: str | None, message: str) -> BadRequest:
    return BadRequest(param, message)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def chat_view(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request as chat messages, for the shared reply and token helpers."""
    messages: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        messages.append({"role": "system", "content": body["instructions"]})
    value = body.get("input")
    if isinstance(value, str):
        messages.append({"role": "user", "content": value})
        return messages
    for item in value if isinstance(value, list) else []:
        kind = item.get("type", "message")
        if kind == "message":
            content = item.get("content")
            if isinstance(content, list):
                content = [{"type": "image_url"} if p.get("type") == "input_image" else {"type": "text", "text": p["text"]}
                           for p in content
                           if p.get("type") == "input_image" or isinstance(p.get("text"), str)]
            messages.append({"role": item.get("role"), "content": content})
        elif kind in _OUTPUTS:
            messages.append({"role": "tool", "content": _content_text(item.get("output"))})
        else:
            messages.append({"role": "assistant", "content": None})
    return messages


def _functions(tools: list[dict[str, Any]]) -> list[tuple[str | None, dict[str, Any]]]:
    """(namespace, function tool) pairs: top-level function tools, then namespaced ones."""
    out: list[tuple[str | None, dict[str, Any]]] = [(None, t) for t in tools if t.get("type") == "function"]
    for tool in tools:
        if tool.get("type") == "namespace":
            out += [(tool["name"], t) for t in tool["tools"] if t.get("type") == "function"]
    return out


def count_responses_prompt_tokens(body: dict[str, Any]) -> int:
    """Input tokens of a Responses request (see the module docstring)."""
    tools = [{"function": {k: v for k, v in t.items() if k != "type"}} for _, t in _functions(body.get("tools") or [])]
    return count_chat_prompt_tokens(chat_view(body), tools)


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------
def _check_content(content: Any, role: str, path: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(f"{path}.content", f"Invalid type for '{path}.content': expected a string or an array.")
    allowed = _ASSISTANT_CONTENT if role == "assistant" else _USER_CONTENT
    for j, part in enumerate(content):
        p = f"{path}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            raise _bad(f"{p}.type", f"Invalid value: {kind!r}. Supported values are: {', '.join(sorted(allowed))}.")
        if kind in ("input_text", "output_text") and not isinstance(part.get("text"), str):
            raise _bad(f"{p}.text", f"Missing required parameter: '{p}.text'.")
        if kind == "input_image" and not (part.get("image_url") or part.get("file_id")):
            raise _bad(f"{p}.image_url", f"Missing required parameter: '{p}.image_url'.")


def _check_input(body: dict[str, Any]) -> None:
    value = body.get("input")
    if value is None:
        if body.get("previous_response_id") or body.get("prompt") or body.get("conversation"):
            body["input"] = []
            return
        raise _bad("input", "Missing required parameter: 'input'.")
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise _bad("input", "Invalid type for 'input': expected a string or an array of input items.")
    calls: set[str] = set()
    for i, item in enumerate(value):
        path = f"input[{i}]"
        if not isinstance(item, dict):
            raise _bad(path, f"Invalid type for '{path}': expected an object.")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise _bad(f"{path}.role", f"Invalid value: {role!r}. Supported values are: 'assistant', "
                                          "'developer', 'system' and 'user'.")
            _check_content(item.get("content"), role, path)
        elif kind in ("function_call", "custom_tool_call"):
            for key in ("call_id", "name", "arguments" if kind == "function_call" else "input"):
                if not isinstance(item.get(key), str):
                    raise _bad(f"{path}.{key}", f"Missing required parameter: '{path}.{key}'.")
            calls.add(item["call_id"])
        elif kind in _OUTPUTS:
            if not isinstance(item.get("call_id"), str):
                raise _bad(f"{path}.call_id", f"Missing required parameter: '{path}.call_id'.")
            if not isinstance(item.get("output"), str | list):
                raise _bad(f"{path}.output", f"Missing required parameter: '{path}.output'.")
            if item["call_id"] not in calls and not body.get("previous_response_id"):
                raise _bad("input", f"No tool call found for function call output with call_id {item['call_id']}.")
        elif kind == "reasoning":
            if not isinstance(item.get("summary"), list):
                raise _bad(f"{path}.summary", f"Missing required parameter: '{path}.summary'.")
            encrypted = item.get("encrypted_content")
            if encrypted is not None and not (isinstance(encrypted, str) and encrypted.startswith(ENCRYPTED_PREFIX)):
                raise _bad("input", f"The encrypted content for item {item.get('id')} could not be verified.")
        elif not isinstance(kind, str):
            raise _bad(f"{path}.type", f"Missing required parameter: '{path}.type'.")


def _check_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _bad("tools", "Invalid type for 'tools': expected an array.")
    for i, tool in enumerate(tools):
        path = f"tools[{i}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise _bad(f"{path}.type", f"Missing required parameter: '{path}.type'.")
        inner = [tool]
        if tool["type"] == "namespace":
            if not isinstance(tool.get("name"), str) or not isinstance(tool.get("tools"), list):
                raise _bad(f"{path}.tools", f"Missing required parameter: '{path}.tools'.")
            inner = [t if isinstance(t, dict) else {} for t in tool["tools"]]
        for j, t in enumerate(inner):
            p = path if t is tool else f"{path}.tools[{j}]"
            if t.get("type") in ("function", "custom") and not isinstance(t.get("name"), str):
                raise _bad(f"{p}.name", f"Missing required parameter: '{p}.name'.")
            if t.get("type") == "function" and not isinstance(t.get("parameters", {}), dict | None):
                raise _bad(f"{p}.parameters", f"Invalid type for '{p}.parameters': expected an object.")
    return tools


def _check_scalars(body: dict[str, Any]) -> int | None:
    max_tokens = body.get("max_output_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or max_tokens < MIN_OUTPUT_TOKENS):
        raise _bad("max_output_tokens", "Invalid 'max_output_tokens': integer below minimum value. Expected a "
                                        f"value >= {MIN_OUTPUT_TOKENS}, but got {max_tokens!r} instead.")
    for name, hi in (("temperature", 2), ("top_p", 1)):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= hi):
            raise _bad(name, f"Invalid '{name}': expected a number between 0 and {hi}.")
    include = body.get("include")
    if include is not None:
        if not isinstance(include, list):
            raise _bad("include", "Invalid type for 'include': expected an array.")
        for j, value in enumerate(include):
            if value not in INCLUDABLE:
                raise _bad(f"include[{j}]", f"Invalid value: {value!r}. Supported values are: "
                                            f"{', '.join(sorted(INCLUDABLE))}.")
    reasoning = body.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, dict):
        raise _bad("reasoning", "Invalid type for 'reasoning': expected an object.")
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        if not isinstance(fmt.get("name"), str):
            raise _bad("text.format.name", "Missing required parameter: 'text.format.name'.")
        if not isinstance(fmt.get("schema"), dict):
            raise _bad("text.format.schema", "Missing required parameter: 'text.format.schema'.")
    return max_tokens


# --------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------
def _pick_calls(body: dict[str, Any], tools: list[dict[str, Any]]) -> list[tuple[str | None, dict[str, Any]]]:
    funcs = _functions(tools)
    choice = body.get("tool_choice")
    value = body["input"]
    last = value[-1] if isinstance(value, list) and value else {}
    if not funcs or choice == "none" or last.get("type") in _OUTPUTS:
        return []  # after a tool result the model answers in text
    if isinstance(choice, dict) and choice.get("type") == "function":
        named = [f for f in funcs if f[1]["name"] == choice.get("name")]
        if not named:
            raise _bad("tool_choice", f"Tool choice '{choice.get('name')}' not found in 'tools' parameter.")
        return named[:1]
    if choice == "required" and body.get("parallel_tool_calls") is not False and len(funcs) >= 2:
        return funcs[:2]
    return funcs[:1]


def plan_response(body: Any, sc: Scenario) -> Plan:
    """Validate the request and compute the deterministic answer (BadRequest -> 400)."""
    if not isinstance(body, dict):
        raise _bad(None, "Request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "Missing required parameter: 'model'.")
    _check_input(body)
    tools = _check_tools(body)
    max_tokens = _check_scalars(body)
    plan = Plan(body=body, model=model, prompt_tokens=count_responses_prompt_tokens(body))
    messages = chat_view(body)
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") != "none":
        plan.reasoning = "Fake reasoning about: " + " ".join(gen.last_user_text(messages).split()[:8])
        plan.reasoning_tokens = count_tokens(plan.reasoning)
        plan.summary = reasoning.get("summary") in ("auto", "concise", "detailed")
        plan.encrypted = "reasoning.encrypted_content" in (body.get("include") or ())
    calls = _pick_calls(body, tools)
    if calls and not sc.notools:
        for i, (namespace, fn) in enumerate(calls):
            args = gen.tool_arguments(fn)
            call = {"type": "function_call", "call_id": f"call_fake_{i}", "name": fn["name"], "arguments": args}
            if namespace is not None:
                call["namespace"] = namespace
            plan.calls.append(call)
            plan.completion_tokens += count_tokens(fn["name"]) + count_tokens(args)
    else:
        fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
        fmt_type = fmt.get("type") if isinstance(fmt, dict) else None
        words = gen.reply_words(messages, sc.words)
        if fmt_type in ("json_schema", "json_object"):
            value = gen.json_from_schema(fmt["schema"]) if fmt_type == "json_schema" else {"result": " ".join(words)}
            plan.text = orjson.dumps(value).decode()
            size = max(1, -(-len(plan.text) // 3))
            plan.pieces = [plan.text[i:i + size] for i in range(0, len(plan.text), size)]
        else:
            budget = None if max_tokens is None else max(0, max_tokens - plan.reasoning_tokens)
            words, plan.incomplete = gen.truncate_words(words, budget)
            plan.text = " ".join(words)
            plan.pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        plan.completion_tokens = count_tokens(plan.text)
    plan.completion_tokens += plan.reasoning_tokens
    return plan


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------
def _usage(plan: Plan, sc: Scenario) -> dict[str, Any]:
    return {
        "input_tokens": plan.prompt_tokens,
        "input_tokens_details": {"cached_tokens": min(sc.cached, plan.prompt_tokens), "cache_write_tokens": 0},
        "output_tokens": plan.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
    }


def _envelope(plan: Plan, n: int, created: int, status: str) -> dict[str, Any]:
    """The response object without output/usage: the request echoed as the API does."""
    body = plan.body
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
    text = dict(body["text"]) if isinstance(body.get("text"), dict) else {}
    text.setdefault("format", {"type": "text"})
    text.setdefault("verbosity", "medium")
    return {
        "id": f"resp_fake_{n}", "object": "response", "created_at": created, "status": status,
        "background": bool(body.get("background", False)), "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"), "model": plan.model, "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"), "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"), "service_tier": "default",
        "store": body.get("store", True), "temperature": body.get("temperature", 1.0), "text": text,
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0), "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"), "usage": None, "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _output(plan: Plan, n: int) -> list[dict[str, Any]]:
    """The finished output items, in order: reasoning, then the message or the calls."""
    items: list[dict[str, Any]] = []
    if plan.reasoning is not None:
        item: dict[str, Any] = {"id": f"rs_fake_{n}", "type": "reasoning", "summary": (
            [{"type": "summary_text", "text": plan.reasoning}] if plan.summary else [])}
        if plan.encrypted:
            item["encrypted_content"] = ENCRYPTED_PREFIX + base64.b64encode(plan.reasoning.encode()).decode()
        items.append(item)
    for i, call in enumerate(plan.calls):
        items.append({"id": f"fc_fake_{n}_{i}", **call, "status": "completed"})
    if plan.text is not None:
        status = "incomplete" if plan.incomplete else "completed"
        items.append({"id": f"msg_fake_{n}", "type": "message", "status": status, "role": "assistant", "content": [
            {"type": "output_text", "text": plan.text, "annotations": [], "logprobs": []}]})
    return items


def _final(plan: Plan, n: int, created: int, sc: Scenario) -> dict[str, Any]:
    obj = _envelope(plan, n, created, "incomplete" if plan.incomplete else "completed")
    obj["output"] = _output(plan, n)
    obj["usage"] = _usage(plan, sc)
    if plan.incomplete:
        obj["incomplete_details"] = {"reason": "max_output_tokens"}
    return obj


def response_body(plan: Plan, n: int, created: int, sc: Scenario) -> bytes:
    return orjson.dumps(_final(plan, n, created, sc))


def _item_events(item: dict[str, Any], oi: int, pieces: list[str], obfuscate: bool) -> list[dict[str, Any]]:
    """added ... done events of one output item (without sequence numbers)."""
    iid, kind = item["id"], item["type"]
    delta_extra = {"obfuscation": "fake"} if obfuscate else {}
    events: list[dict[str, Any]] = []
    if kind == "message":
        part = item["content"][0]
        events.append({"type": "response.output_item.added", "output_index": oi,
                       "item": {**item, "status": "in_progress", "content": []}})
        events.append({"type": "response.content_part.added", "item_id": iid, "output_index": oi,
                       "content_index": 0, "part": {**part, "text": ""}})
        events += [{"type": "response.output_text.delta", "item_id": iid, "output_index": oi, "content_index": 0,
                    "delta": p, "logprobs": [], **delta_extra} for p in pieces]
        events.append({"type": "response.output_text.done", "item_id": iid, "output_index": oi, "content_index": 0,
                       "text": part["text"], "logprobs": []})
        events.append({"type": "response.content_part.done", "item_id": iid, "output_index": oi,
                       "content_index": 0, "part": part})
    elif kind == "function_call":
        events.append({"type": "response.output_item.added", "output_index": oi,
                       "item": {**item, "arguments": "", "status": "in_progress"}})
        args = item["arguments"]
        size = max(1, -(-len(args) // 3))  # ~3 fragments, as chat mode streams them
        events += [{"type": "response.function_call_arguments.delta", "item_id": iid, "output_index": oi,
                    "delta": args[i:i + size], **delta_extra} for i in range(0, len(args), size)]
        events.append({"type": "response.function_call_arguments.done", "item_id": iid, "output_index": oi,
                       "arguments": args})
    else:  # reasoning
        events.append({"type": "response.output_item.added", "output_index": oi,
                       "item": {"id": iid, "type": "reasoning", "summary": []}})
        for si, summary in enumerate(item["summary"]):
            text = summary["text"]
            words = text.split(" ")
            base = {"item_id": iid, "output_index": oi, "summary_index": si}
            events.append({"type": "response.reasoning_summary_part.added", **base,
                           "part": {"type": "summary_text", "text": ""}})
            events += [{"type": "response.reasoning_summary_text.delta", **base,
                        "delta": w if i == 0 else " " + w, **delta_extra} for i, w in enumerate(words)]
            events.append({"type": "response.reasoning_summary_text.done", **base, "text": text})
            events.append({"type": "response.reasoning_summary_part.done", **base, "part": summary})
    events.append({"type": "response.output_item.done", "output_index": oi, "item": item})
    return events


def stream_events(plan: Plan, n: int, created: int, sc: Scenario) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """SSE events split into (head, body, tail) so ``cut`` can drop half the body."""
    options = plan.body.get("stream_options")
    obfuscate = not (isinstance(options, dict) and options.get("include_obfuscation") is False)
    start = _envelope(plan, n, created, "in_progress")
    head = [{"type": "response.created", "response": start}, {"type": "response.in_progress", "response": start}]
    body: list[dict[str, Any]] = []
    for oi, item in enumerate(_output(plan, n)):
        body += _item_events(item, oi, plan.pieces, obfuscate)
    final = _final(plan, n, created, sc)
    tail = [{"type": f"response.{final['status']}", "response": final}]

    def frame(seq: int, event: dict[str, Any]) -> bytes:
        data = orjson.dumps({"type": event["type"], "sequence_number": seq, **event})
        return b"event: " + event["type"].encode() + b"\ndata: " + data + b"\n\n"

    frames = [frame(seq, e) for seq, e in enumerate(head + body + tail)]
    head_b, body_b, tail_b = frames[:2], frames[2:2 + len(body)], frames[2 + len(body):]
    if sc.garbage and body_b:
        body_b.insert(1, b"event: response.output_text.delta\ndata: {not json\n\n")
    return head_b, body_b, tail_b


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------
async def create_response(request: web.Request) -> web.StreamResponse:
    from .server import OPENAI_RULES, _bad_request  # late: server.py imports this module

    pre = await prelude(request, OPENAI_RULES)
    if isinstance(pre, web.Response):
        return pre
    sc, body = pre
    try:
        plan = plan_response(body, sc)
    except BadRequest as exc:
        return _bad_request(exc.message, exc.param)
    n = next(request.app[COUNTER])
    created = int(time.time())
    if body.get("stream") is True:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        return await write_events(request, resp, cut_events(*stream_events(plan, n, created, sc), sc), sc)
    return await send_whole(request, response_body(plan, n, created, sc), sc)


#: (method, path, handler) for server.make_app, which also mounts them under /s/{scenario}.
ROUTES = [("POST", "/v1/responses", create_response)]
