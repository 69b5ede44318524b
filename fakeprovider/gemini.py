"""Gemini mode of the fake provider: ``POST /v1beta/models/{model}:{method}``.

Methods: ``generateContent``, ``streamGenerateContent`` (SSE with ``?alt=sse``, otherwise one
streamed JSON array, as Google does), ``batchEmbedContents`` and ``embedContent``; also under
``/v1/`` and behind the ``/s/<scenarios>`` prefix.  Formats follow
https://ai.google.dev/api/generate-content and https://ai.google.dev/api/embeddings; errors use
Google's shape ``{"error": {"code", "message", "status"}}`` (https://ai.google.dev/gemini-api/docs/troubleshooting).

Replies come from the same helpers as chat (:mod:`fakeprovider.content`), so tests predict
them exactly.  Prompt tokens: the request is viewed as chat messages (systemInstruction first;
text parts as text, inlineData/fileData as one image each, functionCall/functionResponse as the
compact JSON of their ``args``/``response``) and counted with
:func:`fakeprovider.tokens.count_chat_prompt_tokens`, tools being the function declarations.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from . import content as gen
from .common import COUNTER, Rules, read_request, screen, send_whole, write_events
from .scenarios import Scenario
from .tokens import count_chat_prompt_tokens, count_tokens

__all__ = ["ROUTES", "GeminiError", "Plan", "plan_generate", "response_body", "stream_chunks"]

_JSON = "application/json"
_EMBED_DIMS = 768  # text-embedding-004; gemini-embedding-* models default to 3072
_MAX_BATCH = 100


class GeminiError(Exception):
    """An error answered in Google's shape."""

    def __init__(self, code: int, message: str, status: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.details = code, message, status, details

    def body(self) -> bytes:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return orjson.dumps({"error": error})


def _invalid(message: str) -> GeminiError:
    return GeminiError(400, message, "INVALID_ARGUMENT")


_FORCED = {
    401: GeminiError(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT", [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"},
    ]),
    429: GeminiError(429, "Resource has been exhausted (e.g. check quota).", "RESOURCE_EXHAUSTED", [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"},
    ]),
    500: GeminiError(500, "An internal error has occurred. Please retry or report in "
                          "https://developers.generativeai.google/guide/troubleshooting", "INTERNAL"),
    503: GeminiError(503, "The model is overloaded. Please try again later.", "UNAVAILABLE"),
}
_NO_KEY = GeminiError(403, "Method doesn't allow unregistered callers (callers without established identity). "
                           "Please use API Key or other form of API consumer identity to call this API.",
                      "PERMISSION_DENIED")

# Field names the real API knows (camelCase; the JSON parser also takes snake_case).
_REQUEST_FIELDS = {"model", "contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
                   "safetySettings", "cachedContent"}
_PART_DATA = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
              "codeExecutionResult"}
_PART_FIELDS = _PART_DATA | {"thought", "thoughtSignature", "videoMetadata", "mediaResolution", "partMetadata"}
_CONFIG_FIELDS = {"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities",
                  "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty",
                  "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers", "speechConfig",
                  "thinkingConfig", "mediaResolution", "imageConfig"}
_SCHEMA_FIELDS = {"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
                  "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
                  "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum"}
_MIME_TYPES = {"text/plain", "application/json", "text/x.enum"}
_CONTENT_FIELDS = frozenset({"role", "parts"})


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _both(names: set[str]) -> frozenset[str]:
    return frozenset(names | {_snake(n) for n in names})


def _get(obj: dict[str, Any], name: str) -> Any:
    """A field by its camelCase or snake_case name (proto JSON accepts both)."""
    return obj[name] if name in obj else obj.get(_snake(name))


def _check_fields(obj: dict[str, Any], known: frozenset[str], where: str) -> None:
    for key in obj:
        if key not in known:
            raise _invalid(f'Invalid JSON payload received. Unknown name "{key}" at \'{where}\': Cannot find field.')


_REQUEST_KNOWN = _both(_REQUEST_FIELDS)
_PART_KNOWN = _both(_PART_FIELDS)
_PART_DATA_KNOWN = _both(_PART_DATA)
_CONFIG_KNOWN = _both(_CONFIG_FIELDS)
_SCHEMA_KNOWN = _both(_SCHEMA_FIELDS)


def _check_schema(schema: Any, where: str) -> None:
    """Gemini's Schema is an OpenAPI subset: JSON Schema keywords are unknown fields there."""
    if not isinstance(schema, dict):
        raise _invalid(f"Invalid value at '{where}': expected an object.")
    _check_fields(schema, _SCHEMA_KNOWN, where)
    props = schema.get("properties")
    if props is not None:
        if str(schema.get("type", "")).lower() == "object" and props == {}:
            raise _invalid(f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type")
        for name, sub in (props or {}).items():
            _check_schema(sub, f"{where}.properties[{name}].value")
    if "items" in schema:
        _check_schema(schema["items"], f"{where}.items")
    for i, sub in enumerate(schema.get("anyOf") or []):
        _check_schema(sub, f"{where}.any_of[{i}]")
    enum = schema.get("enum")
    if enum is not None and not (isinstance(enum, list) and all(isinstance(v, str) for v in enum)):
        raise _invalid(f"Invalid value at '{where}.enum': enum values must be strings.")


def _lower_types(schema: Any) -> Any:
    """Gemini writes types as "OBJECT" or "object"; content.json_from_schema wants lowercase."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


# --------------------------------------------------------------------------
# Planning the answer
# --------------------------------------------------------------------------
@dataclass(slots=True)
class Plan:
    model: str
    prompt_tokens: int
    pieces: list[str] = field(default_factory=list)  # text, in stream-sized pieces
    calls: list[dict[str, Any]] = field(default_factory=list)  # functionCall objects
    thought: str | None = None
    signature: str | None = None
    finish: str = "STOP"
    completion_tokens: int = 0
    thought_tokens: int = 0


def _validate_contents(body: dict[str, Any]) -> list[dict[str, Any]]:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _invalid("* GenerateContentRequest.contents: contents is not specified")
    for i, item in enumerate(contents):
        if not isinstance(item, dict):
            raise _invalid(f"Invalid value at 'contents[{i}]': expected an object.")
        _check_fields(item, _CONTENT_FIELDS, f"contents[{i}]")
        if item.get("role") not in (None, "user", "model", "function"):
            raise _invalid("Please use a valid role: user, model.")
        parts = item.get("parts")
        if not isinstance(parts, list) or not parts:
            raise _invalid(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
        for j, part in enumerate(parts):
            if not isinstance(part, dict):
                raise _invalid(f"Invalid value at 'contents[{i}].parts[{j}]': expected an object.")
            _check_fields(part, _PART_KNOWN, f"contents[{i}].parts[{j}]")
            if sum(1 for k in part if k in _PART_DATA_KNOWN) != 1:
                raise _invalid(f"* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof field 'data' "
                               "must have one initialized field")
    return contents


def _check_signatures(model: str, contents: list[dict[str, Any]]) -> None:
    """Gemini 3 rejects a current turn whose model steps lost their thought signature:
    https://ai.google.dev/gemini-api/docs/thought-signatures (first functionCall of each step)."""
    if "gemini-3" not in model:
        return
    start = 0
    for i, item in enumerate(contents):  # the current turn begins at the last real user message
        if item.get("role") != "model" and any("text" in p for p in item["parts"]):
            start = i
    for i, item in enumerate(contents[start:], start):
        calls = [p for p in item["parts"] if "functionCall" in p]
        if item.get("role") == "model" and calls and not _get(calls[0], "thoughtSignature"):
            name = calls[0]["functionCall"].get("name") if isinstance(calls[0]["functionCall"], dict) else "?"
            raise _invalid(f"Function call is missing a thought_signature in functionCall parts. Additional data, "
                           f"function call `default_api:{name}` , position {i + 1}. Please refer to "
                           "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.")


def _chat_view(body: dict[str, Any], contents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request as chat messages, for the shared reply and token helpers."""

    def parts_content(parts: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for p in parts if isinstance(parts, list) else []:
            if not isinstance(p, dict) or p.get("thought") is True:
                continue
            if isinstance(p.get("text"), str):
                out.append({"type": "text", "text": p["text"]})
            elif _get(p, "inlineData") is not None or _get(p, "fileData") is not None:
                out.append({"type": "image_url"})
            elif _get(p, "functionCall") is not None:
                out.append({"type": "text", "text": orjson.dumps(_get(p, "functionCall").get("args") or {}).decode()})
            elif _get(p, "functionResponse") is not None:
                response = _get(p, "functionResponse").get("response") or {}
                out.append({"type": "text", "text": orjson.dumps(response).decode()})
        return out

    messages = []
    system = _get(body, "systemInstruction")
    if isinstance(system, dict):
        messages.append({"role": "system", "content": parts_content(system.get("parts"))})
    for item in contents:
        only_results = all(_get(p, "functionResponse") is not None for p in item["parts"])
        role = "assistant" if item.get("role") == "model" else ("tool" if only_results else "user")
        messages.append({"role": role, "content": parts_content(item["parts"])})
    return messages


def _declarations(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = _get(body, "tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _invalid("Invalid value at 'tools': expected an array.")
    decls: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _invalid(f"Invalid value at 'tools[{i}]': expected an object.")
        for j, decl in enumerate(_get(tool, "functionDeclarations") or []):
            if not isinstance(decl, dict) or not isinstance(decl.get("name"), str) or not decl["name"]:
                raise _invalid(f"* GenerateContentRequest.tools[{i}].function_declarations[{j}].name: "
                               "[FIELD_INVALID] Invalid function name.")
            if decl.get("parameters") is not None:
                _check_schema(decl["parameters"], f"tools[{i}].function_declarations[{j}].parameters")
            decls.append(decl)
    return decls


def _int(config: dict[str, Any], name: str, lo: int, hi: int | None = None) -> int | None:
    value = _get(config, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        raise _invalid(f"* GenerateContentRequest.generation_config.{_snake(name)}: must be an integer >= {lo}"
                       + (f" and <= {hi}" if hi is not None else ""))
    return value


def plan_generate(body: Any, model: str, sc: Scenario) -> Plan:
    """Validate a GenerateContentRequest and compute the deterministic answer."""
    if not isinstance(body, dict):
        raise _invalid("Invalid JSON payload received. Expected an object.")
    _check_fields(body, _REQUEST_KNOWN, "")
    contents = _validate_contents(body)
    _check_signatures(model, contents)
    config = _get(body, "generationConfig") or {}
    if not isinstance(config, dict):
        raise _invalid("Invalid value at 'generation_config': expected an object.")
    _check_fields(config, _CONFIG_KNOWN, "generation_config")
    max_tokens = _int(config, "maxOutputTokens", 1)
    _int(config, "candidateCount", 1, 8)
    mime = _get(config, "responseMimeType") or "text/plain"
    if mime not in _MIME_TYPES:
        raise _invalid(f"* GenerateContentRequest.generation_config.response_mime_type: allowed mimetypes are "
                       f"{', '.join(sorted(_MIME_TYPES))}, got {mime!r}")
    schema = _get(config, "responseSchema")
    if schema is not None:
        if mime not in ("application/json", "text/x.enum"):
            raise _invalid("* GenerateContentRequest.generation_config.response_schema: Only the following mime "
                           "types are supported when setting response_schema: application/json, text/x.enum")
        _check_schema(schema, "generation_config.response_schema")
    decls = _declarations(body)
    messages = _chat_view(body, contents)
    tools = [{"function": d} for d in decls]
    plan = Plan(model=model, prompt_tokens=count_chat_prompt_tokens(messages, tools))

    thinking = _get(config, "thinkingConfig") or {}
    if isinstance(thinking, dict) and _get(thinking, "includeThoughts") is True and _get(thinking, "thinkingBudget") != 0:
        asked = gen.last_user_text(messages).split()[:8]
        plan.thought = "**Planning the answer**\nThe user asked: " + " ".join(asked)
        plan.thought_tokens = count_tokens(plan.thought)

    calling = _get(body, "toolConfig") or {}
    fcc = _get(calling, "functionCallingConfig") if isinstance(calling, dict) else None
    mode = (_get(fcc, "mode") if isinstance(fcc, dict) else None) or "AUTO"
    allowed = _get(fcc, "allowedFunctionNames") if isinstance(fcc, dict) else None
    last_is_result = any(_get(p, "functionResponse") is not None for p in contents[-1]["parts"])
    if decls and mode != "NONE" and not last_is_result and not sc.notools:
        funcs = [d for d in decls if not allowed or d["name"] in allowed]
        if not funcs:
            raise _invalid("* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
                           "no function declaration matches.")
        for fn in funcs[:2] if mode == "ANY" and len(funcs) >= 2 else funcs[:1]:
            args = orjson.loads(gen.tool_arguments({"parameters": _lower_types(fn.get("parameters"))}))
            plan.calls.append({"name": fn["name"], "args": args})
            plan.completion_tokens += count_tokens(fn["name"]) + count_tokens(orjson.dumps(args).decode())
    elif mime == "application/json":
        value = gen.json_from_schema(_lower_types(schema)) if isinstance(schema, dict) else {
            "result": " ".join(gen.reply_words(messages, sc.words))}
        text = orjson.dumps(value).decode()
        size = max(1, -(-len(text) // 3))
        plan.pieces = [text[i:i + size] for i in range(0, len(text), size)]
        plan.completion_tokens = count_tokens(text)
    else:
        words, truncated = gen.truncate_words(gen.reply_words(messages, sc.words), max_tokens)
        plan.finish = "MAX_TOKENS" if truncated else "STOP"
        plan.pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        plan.completion_tokens = count_tokens(" ".join(words))
    if plan.thought is not None or ("gemini-3" in model and plan.calls):
        seed = orjson.dumps([model, plan.thought, plan.calls, plan.pieces])
        plan.signature = base64.b64encode(hashlib.sha256(seed).digest()).decode()
    return plan


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------
def _usage(plan: Plan, sc: Scenario, final: bool = True) -> dict[str, Any]:
    p = plan.prompt_tokens
    if not final:  # running totals, as intermediate stream chunks carry them
        return {"promptTokenCount": p, "totalTokenCount": p}
    usage: dict[str, Any] = {
        "promptTokenCount": p,
        "candidatesTokenCount": plan.completion_tokens,
        "totalTokenCount": p + plan.completion_tokens + plan.thought_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": p}],
    }
    if sc.cached:
        usage["cachedContentTokenCount"] = min(sc.cached, p)
    if plan.thought_tokens:
        usage["thoughtsTokenCount"] = plan.thought_tokens
    return usage


def _answer_parts(plan: Plan) -> list[list[dict[str, Any]]]:
    """The answer's parts grouped as stream chunks (thought, text pieces, all calls at once)."""
    groups: list[list[dict[str, Any]]] = []
    if plan.thought is not None:
        groups.append([{"text": plan.thought, "thought": True}])
    if plan.calls:
        groups.append([{"functionCall": call} for call in plan.calls])
    else:
        groups.extend([{"text": piece}] for piece in plan.pieces or [""])
    if plan.signature is not None:  # on the first part after the thoughts, as Gemini 2.5 does
        groups[1 if plan.thought is not None else 0][0]["thoughtSignature"] = plan.signature
    return groups


def _candidate(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return candidate


def response_body(plan: Plan, rid: str, sc: Scenario) -> bytes:
    parts: list[dict[str, Any]] = []
    for group in _answer_parts(plan):
        parts.extend(group)
    if not plan.calls:  # the non-stream answer has its text in one part
        text = "".join(p["text"] for p in parts if not p.get("thought"))
        head = [p for p in parts if p.get("thought")]
        signature = next((p["thoughtSignature"] for p in parts if not p.get("thought") and "thoughtSignature" in p), None)
        parts = head + [{"text": text, **({"thoughtSignature": signature} if signature else {})}]
    return orjson.dumps({
        "candidates": [_candidate(parts, plan.finish)],
        "usageMetadata": _usage(plan, sc),
        "modelVersion": plan.model,
        "responseId": rid,
    })


def stream_chunks(plan: Plan, rid: str, sc: Scenario) -> list[dict[str, Any]]:
    groups = _answer_parts(plan)
    chunks = []
    for i, group in enumerate(groups):
        last = i == len(groups) - 1
        chunks.append({
            "candidates": [_candidate(group, plan.finish if last else None)],
            "usageMetadata": _usage(plan, sc, final=last),
            "modelVersion": plan.model,
            "responseId": rid,
        })
    return chunks


# --------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------
def _embed_one(request: Any, model: str, where: str) -> list[float]:
    if not isinstance(request, dict):
        raise _invalid(f"Invalid value at '{where}': expected an object.")
    name = request.get("model")
    if name is not None and name != f"models/{model}":
        raise _invalid(f"* BatchEmbedContentsRequest.{where}.model: the model of each request must be "
                       f"models/{model}, got {name!r}")
    content = request.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in parts):
        raise _invalid(f"* BatchEmbedContentsRequest.{where}.content: contents must have text parts")
    dims = _get(request, "outputDimensionality")
    if dims is None:
        dims = 3072 if "gemini-embedding" in model else _EMBED_DIMS
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= 3072:
        raise _invalid(f"* BatchEmbedContentsRequest.{where}.output_dimensionality: must be between 1 and 3072")
    return gen.embedding_floats(" ".join(p["text"] for p in parts), dims)


def embed(body: Any, model: str, batch: bool) -> bytes:
    if not isinstance(body, dict):
        raise _invalid("Invalid JSON payload received. Expected an object.")
    if not batch:
        return orjson.dumps({"embedding": {"values": _embed_one(body, model, "request")}})
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise _invalid("* BatchEmbedContentsRequest.requests: requests is not specified")
    if len(requests) > _MAX_BATCH:
        raise _invalid(f"* BatchEmbedContentsRequest.requests: at most {_MAX_BATCH} requests can be in one batch")
    vectors = [_embed_one(r, model, f"requests[{i}]") for i, r in enumerate(requests)]
    return orjson.dumps({"embeddings": [{"values": v} for v in vectors]})


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------
def _error(exc: GeminiError) -> web.Response:
    return web.Response(body=exc.body(), status=exc.code, content_type=_JSON)


async def _send_stream(request: web.Request, chunks: list[dict[str, Any]], sc: Scenario, sse: bool) -> web.StreamResponse:
    if sse:
        events = [b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in chunks]
        if sc.garbage and len(events) > 1:
            events.insert(1, b"data: {not json\r\n\r\n")
        content_type = "text/event-stream"
    else:  # without alt=sse Google streams one JSON array, element by element
        events = [(b"[" if i == 0 else b",\r\n") + orjson.dumps(c) for i, c in enumerate(chunks)] + [b"]"]
        content_type = _JSON
    if sc.cut:  # about half, never the closing chunk
        events = events[: (len(events) - 1) // 2] if len(events) > 2 else [events[0][: len(events[0]) // 2]]
    resp = web.StreamResponse(headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
    return await write_events(request, resp, events, sc)


def _auth(request: web.Request) -> web.Response | None:
    if request.headers.get("x-goog-api-key", "").strip() or request.query.get("key", "").strip():
        return None
    return _error(_NO_KEY)


_RULES = Rules(  # no bad_json: that is answered after the method check, in handle()
    scenario_error=lambda message: _error(_invalid(message)),
    forced=lambda status: _error(_FORCED[status]),
    auth=_auth,
    query=True,
)


async def handle(request: web.Request) -> web.StreamResponse:
    body, bad_json = await read_request(request, query=_RULES.query)
    model, _, method = request.match_info["target"].rpartition(":")
    sc = await screen(request, _RULES)
    if isinstance(sc, web.Response):
        return sc
    if method not in ("generateContent", "streamGenerateContent", "batchEmbedContents", "embedContent") or not model:
        return _error(GeminiError(404, f"Method {method or '(none)'} is not found for models/{model}.", "NOT_FOUND"))
    if bad_json:
        return _error(_invalid("Invalid JSON payload received. Unexpected token."))
    try:
        if method in ("batchEmbedContents", "embedContent"):
            return web.Response(body=embed(body, model, method == "batchEmbedContents"), content_type=_JSON)
        plan = plan_generate(body, model, sc)
    except GeminiError as exc:
        return _error(exc)
    rid = f"fake-gemini-{next(request.app[COUNTER])}"
    if method == "streamGenerateContent":
        return await _send_stream(request, stream_chunks(plan, rid, sc), sc, request.query.get("alt") == "sse")
    return await send_whole(request, response_body(plan, rid, sc), sc)


#: (method, path, handler) for server.make_app, which also mounts them under /s/{scenario}.
ROUTES = [
    ("POST", "/v1beta/models/{target}", handle),
    ("POST", "/v1/models/{target}", handle),
]
