"""Bedrock mode of the fake provider: ``POST /model/{modelId}/{operation}``.

Operations (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_Operations_Amazon_Bedrock_Runtime.html):

- ``invoke`` / ``invoke-with-response-stream`` with an Anthropic Claude body (``anthropic_version:
  bedrock-2023-05-31``; https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html):
  the answer is an Anthropic message; the stream is Anthropic's events, each one base64 JSON in
  the ``bytes`` of a ``chunk`` event-stream frame.
- ``converse`` / ``converse-stream``: Converse JSON and ConverseStream events in frames.

Also under ``/s/<scenarios>``.  Auth: an ``Authorization: AWS4-HMAC-SHA256 Credential=...,
SignedHeaders=..., Signature=...`` header and ``X-Amz-Date`` must be present and well formed
(the signature itself is not checked); otherwise 403 ``UnrecognizedClientException``.  Errors use
AWS's shape: body ``{"message": ...}`` and the error name in ``x-amzn-ErrorType``.  Scenarios:
``401`` -> 403 UnrecognizedClientException, ``429`` ThrottlingException, ``500``
InternalServerException, ``503`` ServiceUnavailableException, ``timeout``/``ttfb``, ``slow``
(between frames), ``cut`` (half the frames, then hang up), ``garbage`` (one frame with a wrong
message CRC: real clients must fail the stream), ``words``, ``cached`` (cache-read tokens).

Replies come from the chat planner (:func:`fakeprovider.chat.plan_chat`) run on the request
viewed as chat messages: system first; text as text; images and documents as one image each;
tool calls and tool results as the compact JSON of their input / their result text; a user turn
of only tool results counts as a ``tool`` message; tools as ``{"function": {name, description,
parameters}}``.  So prompt tokens, reply words and tool arguments follow the chat rules exactly.
With thinking requested (Claude ``thinking``, or Converse ``additionalModelRequestFields.thinking``)
a signed reasoning block comes first.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from . import content as gen
from .chat import BadRequest, Chat, plan_chat
from .common import COUNTER, Rules, cut_events, prelude, send_whole, write_events
from .eventstream import event_frame
from .scenarios import Scenario
from .tokens import count_tokens

__all__ = ["ROUTES", "BedrockError", "Plan", "plan_claude", "plan_converse"]

_JSON = "application/json"
_EVENTSTREAM = "application/vnd.amazon.eventstream"
_CORAL = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s]+)/\d{8}/[a-z0-9-]+/bedrock/aws4_request,\s*"
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=[0-9a-f]{64}$"
)
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")
_PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html
_CLAUDE_FIELDS = frozenset({
    "anthropic_version", "anthropic_beta", "max_tokens", "system", "messages", "temperature", "top_p", "top_k",
    "stop_sequences", "tools", "tool_choice", "thinking", "metadata", "output_config", "context_management",
})
_CONVERSE_FIELDS = frozenset({
    "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig", "additionalModelRequestFields",
    "additionalModelResponseFieldPaths", "promptVariables", "requestMetadata", "performanceConfig", "outputConfig",
    "serviceTier",
})
_BLOCK_KINDS = frozenset({"text", "image", "document", "video", "toolUse", "toolResult", "guardContent", "cachePoint",
                          "reasoningContent", "citationsContent", "searchResult"})
_CLAUDE_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


class BedrockError(Exception):
    """An error answered in AWS's shape."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message

    def response(self) -> web.Response:
        return web.Response(body=orjson.dumps({"message": self.message}), status=self.status, content_type=_JSON,
                            headers={"x-amzn-ErrorType": self.kind + _CORAL})


def _invalid(message: str) -> BedrockError:
    return BedrockError(400, "ValidationException", message)


def _malformed(detail: str) -> BedrockError:  # the words InvokeModel uses for a bad Claude body
    return _invalid(f"Malformed input request: #: {detail}, please reformat your input and try again.")


_FORCED = {
    401: BedrockError(403, "UnrecognizedClientException", "The security token included in the request is invalid."),
    429: BedrockError(429, "ThrottlingException", "Too many requests, please wait before trying again."),
    500: BedrockError(500, "InternalServerException", "The server encountered an internal error (fake)."),
    503: BedrockError(503, "ServiceUnavailableException", "Bedrock is unable to process your request (fake)."),
}


# --------------------------------------------------------------------------
# Planning: the request as a chat request, answered by the chat planner
# --------------------------------------------------------------------------
@dataclass(slots=True)
class Plan:
    model: str
    chat: Chat
    thought: str | None = None
    signature: str | None = None
    thought_tokens: int = 0

    @property
    def output_tokens(self) -> int:
        return self.chat.completion_tokens + self.thought_tokens


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _chat_part(kind: str, block: dict[str, Any]) -> list[dict[str, Any]]:
    """One content block (Anthropic ``type`` or Converse member name) as chat content parts."""
    if kind == "text" and isinstance(block.get("text"), str):
        return [{"type": "text", "text": block["text"]}]
    if kind in ("image", "document", "video"):
        return [{"type": "image_url"}]
    if kind in ("tool_use", "toolUse"):
        return [{"type": "text", "text": _text(block.get("input") if block.get("input") is not None else {})}]
    if kind == "tool_result":
        inner = block.get("content")
        if isinstance(inner, str):
            return [{"type": "text", "text": inner}]
        return [p for b in inner or [] if isinstance(b, dict) for p in _chat_part(str(b.get("type")), b)]
    if kind == "toolResult":
        return [{"type": "text", "text": _text(b.get("text", b.get("json")))}
                for b in block.get("content") or [] if isinstance(b, dict) and ("text" in b or "json" in b)]
    return []


def _plan(view: list[dict[str, Any]], tools: list[dict[str, Any]], choice: Any, max_tokens: Any, parallel: Any,
          model: str, thinking: bool, sc: Scenario) -> Plan:
    body: dict[str, Any] = {"model": model, "messages": view}
    if tools:
        body["tools"] = tools
        if choice is not None:
            body["tool_choice"] = choice
        if parallel is False:
            body["parallel_tool_calls"] = False
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    try:
        plan = Plan(model=model, chat=plan_chat(body, sc))
    except BadRequest as exc:
        raise _invalid(exc.message) from None
    if thinking:
        asked = gen.last_user_text(view).split()[:8]
        plan.thought = "Planning the answer. The user asked: " + " ".join(asked)
        plan.thought_tokens = count_tokens(plan.thought)
        seed = orjson.dumps([model, plan.thought])
        plan.signature = base64.b64encode(hashlib.sha256(seed).digest()).decode()
    return plan


def _check_messages(messages: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise _invalid(f"{where}: messages must be a non-empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise _invalid(f"{where}.{i}.role: must be user or assistant")
    return messages


def plan_claude(body: Any, model: str, sc: Scenario) -> Plan:
    """Validate an InvokeModel body for Claude and plan the answer."""
    if not isinstance(body, dict):
        raise _malformed("expected type: JSONObject")
    for key in body:
        if key not in _CLAUDE_FIELDS:
            raise _malformed(f"extraneous key [{key}] is not permitted")
    if body.get("anthropic_version") != "bedrock-2023-05-31":
        raise _malformed("required key [anthropic_version] not found or not bedrock-2023-05-31")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _malformed("required key [max_tokens] not found")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"user_id"}):
        raise _invalid("metadata: Extra inputs are not permitted")
    messages = _check_messages(body.get("messages"), "messages")
    view: list[dict[str, Any]] = []
    system = body.get("system")
    if isinstance(system, str) and system:
        view.append({"role": "system", "content": system})
    elif isinstance(system, list):
        view.append({"role": "system", "content": [p for b in system if isinstance(b, dict) for p in _chat_part("text", b)]})
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            view.append({"role": m["role"], "content": content})
            continue
        if not isinstance(content, list) or not content:
            raise _invalid("messages: content must be a string or a non-empty list")
        blocks = [b for b in content if isinstance(b, dict)]
        only_results = m["role"] == "user" and all(b.get("type") == "tool_result" for b in blocks)
        parts = [p for b in blocks for p in _chat_part(str(b.get("type")), b)]
        view.append({"role": "tool" if only_results else m["role"], "content": parts})
    tools = [{"type": "function", "function": {k: v for k, v in (("name", t.get("name")), ("description", t.get("description")),
                                                               ("parameters", t.get("input_schema"))) if v is not None}}
             for t in body.get("tools") or [] if isinstance(t, dict) and "input_schema" in t]
    raw_choice = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
    kind = raw_choice.get("type")
    choice: Any = {"auto": "auto", "any": "required", "none": "none"}.get(kind) if kind != "tool" else {
        "type": "function", "function": {"name": raw_choice.get("name")}}
    parallel = False if raw_choice.get("disable_parallel_tool_use") is True else None
    thinking = isinstance(body.get("thinking"), dict) and body["thinking"].get("type") in ("enabled", "adaptive")
    return _plan(view, tools, choice, max_tokens, parallel, model, thinking, sc)


def plan_converse(body: Any, model: str, sc: Scenario) -> Plan:
    """Validate a Converse body and plan the answer."""
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.")
    for key in body:
        if key not in _CONVERSE_FIELDS:
            raise BedrockError(400, "SerializationException", f"Unknown field: {key}")
    messages = _check_messages(body.get("messages"), "messages")
    tool_config = body.get("toolConfig")
    view: list[dict[str, Any]] = []
    system = body.get("system")
    if isinstance(system, list) and system:
        view.append({"role": "system", "content": [p for b in system if isinstance(b, dict) for p in _chat_part("text", b)]})
    for i, m in enumerate(messages):
        content = m.get("content")
        if not isinstance(content, list) or not content:
            raise _invalid(f"A conversation must have content: messages.{i}.content is empty.")
        parts: list[dict[str, Any]] = []
        kinds: list[str] = []
        for j, block in enumerate(content):
            members = [k for k in block if k in _BLOCK_KINDS] if isinstance(block, dict) else []
            if len(members) != 1:
                raise _invalid(f"messages.{i}.content.{j}: a ContentBlock must have exactly one member")
            kind = members[0]
            if kind == "text" and not str(block["text"]).strip():
                raise _invalid(f"The text field in the ContentBlock object at messages.{i}.content.{j} is blank. "
                               "Add text to the text field, and try again.")
            if kind in ("toolUse", "toolResult") and not isinstance(tool_config, dict):
                raise _invalid("The toolConfig field must be defined when using toolUse and toolResult content blocks.")
            kinds.append(kind)
            parts.extend(_chat_part(kind, block[kind]) if kind != "text" else _chat_part(kind, block))
        only_results = m["role"] == "user" and all(k in ("toolResult", "cachePoint") for k in kinds)
        view.append({"role": "tool" if only_results else m["role"], "content": parts})
    tools: list[dict[str, Any]] = []
    choice: Any = None
    if isinstance(tool_config, dict):
        for t in tool_config.get("tools") or []:
            spec = t.get("toolSpec") if isinstance(t, dict) else None
            if isinstance(spec, dict):
                schema = spec.get("inputSchema")
                if not isinstance(spec.get("name"), str) or not isinstance(schema, dict) or "json" not in schema:
                    raise _invalid("toolConfig.tools: a toolSpec needs a name and inputSchema.json")
                fn = {k: v for k, v in (("name", spec["name"]), ("description", spec.get("description")),
                                        ("parameters", schema["json"])) if v is not None}
                tools.append({"type": "function", "function": fn})
        if not tools:
            raise _invalid("toolConfig.tools must contain at least one toolSpec")
        raw = tool_config.get("toolChoice")
        if isinstance(raw, dict):
            if "tool" in raw:
                choice = {"type": "function", "function": {"name": (raw["tool"] or {}).get("name")}}
            else:
                choice = "required" if "any" in raw else "auto"
    inference = body.get("inferenceConfig") if isinstance(body.get("inferenceConfig"), dict) else {}
    extra = body.get("additionalModelRequestFields")
    thinking = isinstance(extra, dict) and isinstance(extra.get("thinking"), dict) and extra["thinking"].get("type") == "enabled"
    return _plan(view, tools, choice, inference.get("maxTokens"), None, model, thinking, sc)


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------
def _fragments(s: str, parts: int = 3) -> list[str]:
    size = max(1, -(-len(s) // parts))
    return [s[i:i + size] for i in range(0, len(s), size)]


def _claude_model(model_id: str) -> str:
    """Bedrock's Claude answers name the Anthropic model: "anthropic.claude-x-v1:0" -> "claude-x"."""
    name = model_id.rsplit("/", 1)[-1].split("anthropic.", 1)[-1]
    return re.sub(r"-v\d+(:\d+)?$", "", name)


def _calls(plan: Plan) -> list[tuple[str, str, str]]:
    """(id, name, arguments JSON) of the planned tool calls."""
    return [(f"toolu_bdrk_fake_{i}", c["function"]["name"], c["function"]["arguments"])
            for i, c in enumerate(plan.chat.tool_calls or [])]


def _claude_usage(plan: Plan, sc: Scenario, output: int) -> dict[str, Any]:
    cached = min(sc.cached, plan.chat.prompt_tokens)
    return {"input_tokens": plan.chat.prompt_tokens - cached, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached, "output_tokens": output}


def claude_body(plan: Plan, mid: str, sc: Scenario) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if plan.thought is not None:
        content.append({"type": "thinking", "thinking": plan.thought, "signature": plan.signature})
    if plan.chat.tool_calls:
        content += [{"type": "tool_use", "id": i, "name": n, "input": orjson.loads(a)} for i, n, a in _calls(plan)]
    else:
        content.append({"type": "text", "text": plan.chat.text or ""})
    return {"id": mid, "type": "message", "role": "assistant", "model": _claude_model(plan.model), "content": content,
            "stop_reason": _CLAUDE_STOP.get(plan.chat.finish_reason, "end_turn"), "stop_sequence": None,
            "usage": _claude_usage(plan, sc, plan.output_tokens)}


def claude_events(plan: Plan, mid: str, sc: Scenario) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Anthropic stream events as (head, body, tail), so ``cut`` can drop half the body."""
    message = {**claude_body(plan, mid, sc), "content": [], "stop_reason": None, "usage": _claude_usage(plan, sc, 1)}
    head = [{"type": "message_start", "message": message}]
    body: list[dict[str, Any]] = []
    index = 0

    def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        body.append({"type": "content_block_start", "index": index, "content_block": start})
        body.extend({"type": "content_block_delta", "index": index, "delta": d} for d in deltas)
        body.append({"type": "content_block_stop", "index": index})
        index += 1

    if plan.thought is not None:
        block({"type": "thinking", "thinking": "", "signature": ""},
              [{"type": "thinking_delta", "thinking": plan.thought}, {"type": "signature_delta", "signature": plan.signature}])
    if plan.chat.tool_calls:
        for cid, name, args in _calls(plan):
            block({"type": "tool_use", "id": cid, "name": name, "input": {}},
                  [{"type": "input_json_delta", "partial_json": f} for f in _fragments(args)])
    else:
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in plan.chat.pieces])
    stop = _CLAUDE_STOP.get(plan.chat.finish_reason, "end_turn")
    metrics = {"inputTokenCount": plan.chat.prompt_tokens, "outputTokenCount": plan.output_tokens,
               "invocationLatency": 1, "firstByteLatency": 1}
    tail = [{"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
             "usage": {"output_tokens": plan.output_tokens}},
            {"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics}]
    return head, body, tail


def _converse_usage(plan: Plan, sc: Scenario) -> dict[str, Any]:
    cached = min(sc.cached, plan.chat.prompt_tokens)
    usage = {"inputTokens": plan.chat.prompt_tokens - cached, "outputTokens": plan.output_tokens,
             "totalTokens": plan.chat.prompt_tokens + plan.output_tokens}
    if cached:
        usage |= {"cacheReadInputTokens": cached, "cacheWriteInputTokens": 0}
    return usage


def converse_body(plan: Plan, sc: Scenario) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if plan.thought is not None:
        content.append({"reasoningContent": {"reasoningText": {"text": plan.thought, "signature": plan.signature}}})
    if plan.chat.tool_calls:
        content += [{"toolUse": {"toolUseId": i, "name": n, "input": orjson.loads(a)}} for i, n, a in _calls(plan)]
    else:
        content.append({"text": plan.chat.text or ""})
    return {"output": {"message": {"role": "assistant", "content": content}},
            "stopReason": _CLAUDE_STOP.get(plan.chat.finish_reason, "end_turn"),
            "usage": _converse_usage(plan, sc), "metrics": {"latencyMs": 1}}


def converse_events(plan: Plan, sc: Scenario) -> tuple[list[tuple[str, dict[str, Any]]], ...]:
    """ConverseStream (event type, payload) as (head, body, tail). Text and reasoning blocks
    have no contentBlockStart, as on the real service."""
    head = [("messageStart", {"role": "assistant"})]
    body: list[tuple[str, dict[str, Any]]] = []
    index = 0
    if plan.thought is not None:
        body += [("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": plan.thought}}}),
                 ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": plan.signature}}}),
                 ("contentBlockStop", {"contentBlockIndex": 0})]
        index = 1
    if plan.chat.tool_calls:
        for cid, name, args in _calls(plan):
            body.append(("contentBlockStart", {"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": cid, "name": name}}}))
            body += [("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": f}}}) for f in _fragments(args)]
            body.append(("contentBlockStop", {"contentBlockIndex": index}))
            index += 1
    else:
        body += [("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": p}}) for p in plan.chat.pieces]
        body.append(("contentBlockStop", {"contentBlockIndex": index}))
    tail = [("messageStop", {"stopReason": _CLAUDE_STOP.get(plan.chat.finish_reason, "end_turn")}),
            ("metadata", {"usage": _converse_usage(plan, sc), "metrics": {"latencyMs": 1}})]
    return head, body, tail


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------
def _check_auth(request: web.Request) -> BedrockError | None:
    match = _AUTH.match(request.headers.get("Authorization", "").strip())
    if match is None or "host" not in match.group("signed").split(";"):
        return BedrockError(403, "UnrecognizedClientException",
                            "The security token included in the request is invalid. (fake: send an "
                            "'Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...;host;..., "
                            "Signature=...' header)")
    if not _AMZ_DATE.match(request.headers.get("X-Amz-Date", "")):
        return BedrockError(403, "IncompleteSignatureException", "Authorization header requires existence of "
                            "either a 'X-Amz-Date' or a 'Date' header.")
    return None


async def _send_frames(request: web.Request, rid: str, head: list[bytes], body: list[bytes], tail: list[bytes],
                       sc: Scenario, extra: dict[str, str]) -> web.StreamResponse:
    if sc.garbage and body:
        body = [body[0][:-4] + bytes(b ^ 0xFF for b in body[0][-4:]), *body[1:]]  # wrong message CRC
    resp = web.StreamResponse(headers={"Content-Type": _EVENTSTREAM, "x-amzn-RequestId": rid, **extra})
    return await write_events(request, resp, cut_events(head, body, tail, sc), sc)


def _auth(request: web.Request) -> web.Response | None:
    failure = _check_auth(request)
    return None if failure is None else failure.response()


_RULES = Rules(
    scenario_error=lambda message: _invalid(message).response(),
    forced=lambda status: _FORCED[status].response(),
    auth=_auth,
    bad_json=lambda: BedrockError(400, "SerializationException", "The request body is not valid JSON.").response(),
)


def _pad(i: int) -> str:
    return _PAD[: 1 + (i * 7) % len(_PAD)]  # Bedrock pads events with "p" to hide their size


async def handle(request: web.Request) -> web.StreamResponse:
    pre = await prelude(request, _RULES)
    if isinstance(pre, web.Response):
        return pre
    sc, body = pre
    model, operation = request.match_info["model_id"], request.match_info["operation"]
    claude = operation.startswith("invoke")
    try:
        plan = plan_claude(body, model, sc) if claude else plan_converse(body, model, sc)
    except BedrockError as exc:
        return exc.response()
    n = next(request.app[COUNTER])
    rid = f"fake-bedrock-{n}"
    if operation == "invoke-with-response-stream":
        parts = claude_events(plan, f"msg_bdrk_fake{n}", sc)
        frames = [[event_frame("chunk", {"bytes": base64.b64encode(orjson.dumps(e)).decode(), "p": _pad(i)})
                   for i, e in enumerate(group)] for group in parts]
        return await _send_frames(request, rid, *frames, sc, {"X-Amzn-Bedrock-Content-Type": _JSON})
    if operation == "converse-stream":
        frames = [[event_frame(kind, {**payload, "p": _pad(i)}) for i, (kind, payload) in enumerate(group)]
                  for group in converse_events(plan, sc)]
        return await _send_frames(request, rid, *frames, sc, {})
    data = orjson.dumps(claude_body(plan, f"msg_bdrk_fake{n}", sc) if claude else converse_body(plan, sc))
    headers = {"x-amzn-RequestId": rid}
    if claude:
        headers |= {"X-Amzn-Bedrock-Input-Token-Count": str(plan.chat.prompt_tokens),
                    "X-Amzn-Bedrock-Output-Token-Count": str(plan.output_tokens)}
    return await send_whole(request, data, sc, headers)


#: (method, path, handler) for server.make_app, which also mounts them under /s/{scenario}.
#: A modelId may be an ARN: its '/' arrives as %2F, which the router keeps in one segment.
ROUTES = [
    ("POST", "/model/{model_id}/{operation:invoke|invoke-with-response-stream|converse|converse-stream}", handle),
]
