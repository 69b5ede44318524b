"""Chat completion rendering: validation, the deterministic answer, and
the exact bytes of the non-stream body and of the SSE stream events.

Kept free of aiohttp so it can be unit-tested and reused.  Formats:
https://platform.openai.com/docs/api-reference/chat/create (object) and
https://platform.openai.com/docs/api-reference/chat/streaming (chunk object).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import content as gen
from .scenarios import Scenario
from .tokens import count_chat_prompt_tokens, count_tokens

__all__ = ["BadRequest", "Chat", "completion_body", "plan_chat", "stream_events", "usage"]


class BadRequest(Exception):
    """Invalid request: answered with a 400 OpenAI error naming ``param``."""

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


@dataclass(slots=True)
class Chat:
    """Everything needed to render one chat completion, stream or not."""

    model: str
    n: int
    prompt_tokens: int
    text: str | None = None  # assistant content (None for tool calls)
    pieces: list[str] = field(default_factory=list)  # stream deltas of `text`
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str = "stop"
    completion_tokens: int = 0


def _int_param(body: dict[str, Any], name: str, lo: int, hi: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise BadRequest(name, f"Invalid '{name}': expected an integer {bound}.")
    return value


def _fragments(s: str, parts: int = 3) -> list[str]:
    """Split *s* into ~*parts* non-empty pieces (how OpenAI streams arguments)."""
    size = max(1, -(-len(s) // parts))
    return [s[i:i + size] for i in range(0, len(s), size)]


def _pick_tools(body: dict[str, Any], messages: list[Any]) -> list[dict[str, Any]] | None:
    """The function tools to call, or None for a text reply."""
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise BadRequest("tools", "Invalid 'tools': expected an array.")
    funcs = []
    for t in tools:
        if not isinstance(t, dict):
            raise BadRequest("tools", "Invalid 'tools': each tool must be an object.")
        if t.get("type", "function") != "function":
            continue  # other tool kinds are never called by the fake
        fn = t.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise BadRequest("tools", "Invalid 'tools': each function tool needs function.name.")
        funcs.append(fn)
    choice = body.get("tool_choice")
    last = messages[-1]
    if not funcs or choice == "none" or last.get("role") == "tool":
        return None  # after a tool result the model answers in text
    if isinstance(choice, dict):
        spec = choice.get("function")
        name = spec.get("name") if isinstance(spec, dict) else None
        named = [f for f in funcs if f["name"] == name]
        if not named:
            raise BadRequest("tool_choice", f"Invalid 'tool_choice': no tool named {name!r}.")
        return named
    if choice == "required" and body.get("parallel_tool_calls") is not False and len(funcs) >= 2:
        return funcs[:2]
    return funcs[:1]


SCHEMA_MARKER = "JSON schema:"


def _schema_in_instructions(messages: list[Any]) -> dict[str, Any] | None:
    """The JSON object after "JSON schema:" in a system or user message, if any."""
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        texts = [content] if isinstance(content, str) else [p.get("text", "") for p in content or [] if isinstance(p, dict)]
        for text in texts:
            if isinstance(text, str) and SCHEMA_MARKER in text:
                rest = text.split(SCHEMA_MARKER, 1)[1].strip()
                try:
                    value, _ = json.JSONDecoder().raw_decode(rest)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    return value
    return None


def plan_chat(body: Any, sc: Scenario) -> Chat:
    """Validate the request and compute the deterministic answer.

    Raises :class:`BadRequest` for a 400.
    """
    if not isinstance(body, dict):
        raise BadRequest(None, "Request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model", "you must provide a model parameter")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages", "Invalid 'messages': expected a non-empty array.")
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise BadRequest("messages", "Invalid 'messages': each message needs a string 'role'.")
    n = _int_param(body, "n", 1, 8) or 1
    max_tokens = _int_param(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _int_param(body, "max_tokens", 1)
    chat = Chat(model=model, n=n, prompt_tokens=count_chat_prompt_tokens(messages, body.get("tools")))

    funcs = _pick_tools(body, messages)
    if funcs and not sc.notools:
        chat.tool_calls = []
        for i, fn in enumerate(funcs):
            args = gen.tool_arguments(fn)
            chat.tool_calls.append(
                {"id": f"call_fake_{i}", "type": "function", "function": {"name": fn["name"], "arguments": args}}
            )
            chat.completion_tokens += count_tokens(fn["name"]) + count_tokens(args)
        chat.completion_tokens *= n
        chat.finish_reason = "tool_calls"
        return chat

    fmt = body.get("response_format")
    fmt_type = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt_type == "json_schema" and sc.no_json_schema:
        # DeepSeek's answer (https://api-docs.deepseek.com/guides/json_mode supports json_object only).
        raise BadRequest("response_format", "This response_format type is unavailable now")
    words = gen.reply_words(messages, sc.words)
    if fmt_type == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        value = gen.json_from_schema(schema if isinstance(schema, dict) else {"type": "object"})
        chat.text = orjson.dumps(value).decode()
        chat.pieces = _fragments(chat.text)
    elif fmt_type == "json_object":
        # Like an instruction-following model: a JSON schema given in the instructions is obeyed.
        schema = _schema_in_instructions(messages)
        value = gen.json_from_schema(schema) if schema is not None else {"result": " ".join(words)}
        chat.text = orjson.dumps(value).decode()
        chat.pieces = _fragments(chat.text)
    else:
        words, truncated = gen.truncate_words(words, max_tokens)
        if truncated:
            chat.finish_reason = "length"
        chat.text = " ".join(words)
        # Word i carries its leading space, so the deltas concatenate to `text`.
        chat.pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    chat.completion_tokens = count_tokens(chat.text) * n
    return chat


def usage(prompt: int, completion: int, cached: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": min(cached, prompt), "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_body(chat: Chat, cid: str, created: int, sc: Scenario) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": chat.text, "refusal": None}
    if chat.tool_calls is not None:
        message["tool_calls"] = chat.tool_calls
    choices = [
        {"index": i, "message": message, "logprobs": None, "finish_reason": chat.finish_reason}
        for i in range(chat.n)
    ]
    return orjson.dumps({
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": chat.model,
        "system_fingerprint": "fp_fake",
        "choices": choices,
        "usage": usage(chat.prompt_tokens, chat.completion_tokens, sc.cached),
    })


def stream_events(
    chat: Chat, cid: str, created: int, sc: Scenario, include_usage: bool
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """SSE events split into (head, body, tail) so ``cut`` can drop half the body."""
    base: dict[str, Any] = {
        "id": cid, "object": "chat.completion.chunk", "created": created,
        "model": chat.model, "system_fingerprint": "fp_fake",
    }
    if include_usage:
        base["usage"] = None  # every chunk carries usage: null when usage is requested

    def event(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n"

    # Tool-call streams open with content null, like the real API.
    first_content = None if chat.tool_calls is not None else ""
    head = [event(i, {"role": "assistant", "content": first_content}) for i in range(chat.n)]
    deltas: list[dict[str, Any]] = []
    if chat.tool_calls is not None:
        for j, call in enumerate(chat.tool_calls):
            fn = call["function"]
            deltas.append({"tool_calls": [{
                "index": j, "id": call["id"], "type": "function",
                "function": {"name": fn["name"], "arguments": ""},
            }]})
            deltas.extend(
                {"tool_calls": [{"index": j, "function": {"arguments": frag}}]}
                for frag in _fragments(fn["arguments"])
            )
    else:
        deltas = [{"content": piece} for piece in chat.pieces]
    body = [event(i, d) for d in deltas for i in range(chat.n)]
    if sc.garbage and body:
        body.insert(1, b"data: {not json\n\n")
    tail = [event(i, {}, chat.finish_reason) for i in range(chat.n)]
    if include_usage:
        totals = usage(chat.prompt_tokens, chat.completion_tokens, sc.cached)
        tail.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": totals}) + b"\n\n")
    tail.append(b"data: [DONE]\n\n")
    return head, body, tail
