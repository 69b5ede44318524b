"""IR <-> Gemini `generateContent` JSON (https://ai.google.dev/api/generate-content).

Pure functions, no I/O. `request_from_ir` builds the request body, `response_to_ir` reads a
GenerateContentResponse (also one stream chunk's parts, through `read_parts`).
"""

from __future__ import annotations

import base64
import mimetypes
import re
import time
import uuid
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import orjson

from ... import ir
from .schema import clean_schema

__all__ = [
    "DUMMY_THOUGHT_SIGNATURE",
    "SAFETY_CATEGORIES",
    "clean_schema",
    "finish_reason",
    "read_parts",
    "request_from_ir",
    "response_to_ir",
    "usage_from_gemini",
]

# Harm categories of the Gemini API (https://ai.google.dev/api/generate-content#harmcategory);
# every one is set to BLOCK_NONE unless the channel says otherwise, as the original one-api
# did with GEMINI_SAFETY_SETTING: a gateway's callers decide on moderation themselves.
SAFETY_CATEGORIES = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
DEFAULT_SAFETY_THRESHOLD = "BLOCK_NONE"

# Gemini 3 answers 400 when the first functionCall of a model step in the current turn has no
# thoughtSignature. History Gemini did not produce (another vendor's turns, a client that
# dropped reasoning) has none; Google documents this placeholder for exactly that case:
# https://ai.google.dev/gemini-api/docs/thought-signatures (FAQ: "transfer a conversation").
DUMMY_THOUGHT_SIGNATURE = "skip_thought_signature_validator"

# Reasoning effort -> thinkingBudget (https://ai.google.dev/gemini-api/docs/thinking#set-budget).
EFFORT_BUDGET = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
# The highest budget every 2.5 model takes (Flash stops at 24576, Pro at 32768): an Anthropic
# caller's budget_tokens of 32000 must not turn into a 400 on Flash.
MAX_BUDGET = 24576

_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
}
_MIME_BY_EXT = {
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp",
    "gif": "image/gif", "heic": "image/heic", "heif": "image/heif", "pdf": "application/pdf",
    "txt": "text/plain", "mp3": "audio/mp3", "wav": "audio/wav", "mp4": "video/mp4",
}
_DATA_URL = re.compile(r"^data:(?P<mime>[^;,]*)(?P<params>(;[^;,]*)*),(?P<data>.*)$", re.S)
_FILES_BASE = "https://generativelanguage.googleapis.com/v1beta/"


# --------------------------------------------------------------------------------------- request


def request_from_ir(request: ir.Request, *, safety: Any = None) -> dict[str, Any]:
    """The GenerateContentRequest body for `request`. `safety` is the channel's setting: a
    threshold name for all categories, or a full `safetySettings` list (None = BLOCK_NONE)."""
    body: dict[str, Any] = {"contents": _contents(request.messages)}
    system = "\n".join(p.text for p in request.system if p.text)
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    tools, names = _tools(request.tools)
    if tools:
        body["tools"] = tools
    if names and request.tool_choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _tool_choice(request.tool_choice, names)}
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    if isinstance(safety, list):
        body["safetySettings"] = safety
    else:
        threshold = safety if isinstance(safety, str) and safety else DEFAULT_SAFETY_THRESHOLD
        body["safetySettings"] = [{"category": c, "threshold": threshold} for c in SAFETY_CATEGORIES]
    return body


def _contents(messages: list[ir.Message]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # tool call id -> function name (functionResponse needs it)

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if turns and turns[-1]["role"] == role:  # Gemini wants user/model turns alternating
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": role, "parts": parts})

    for message in messages:
        if message.role in ("system", "developer"):
            # Gemini has no mid-conversation system turn: the text joins the next user turn.
            text = "\n".join(p.text for p in message.parts if isinstance(p, ir.TextPart) and p.text)
            add("user", [{"text": text}] if text else [])
        elif message.role == "assistant":
            add("model", _model_parts(message.parts, call_names))
        else:  # "user" and "tool": results go back in a user turn as functionResponse parts
            add("user", _user_parts(message.parts, call_names))
    for turn in turns:
        if turn["role"] == "model":
            calls = [p for p in turn["parts"] if "functionCall" in p]
            if calls and "thoughtSignature" not in calls[0]:
                calls[0]["thoughtSignature"] = DUMMY_THOUGHT_SIGNATURE
    return turns


def _model_parts(parts: list[ir.Part], call_names: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    signature: str | None = None
    for part in parts:
        item: dict[str, Any] | None = None
        if isinstance(part, ir.ReasoningPart):
            # Thought text is not sent back (Gemini does not need it); a Gemini signature goes
            # on the part that followed it: https://ai.google.dev/gemini-api/docs/thought-signatures
            if part.signature:
                signature = part.signature
            continue
        if isinstance(part, ir.TextPart):
            if part.text:
                item = {"text": part.text}
        elif isinstance(part, ir.ToolCallPart):
            if part.kind == "builtin":
                continue  # another provider's server-side tool (web search, ...): nothing to replay
            call_names[part.id] = part.name
            # A custom (free-text) tool's input is no JSON object: it travels as {"input": text}.
            args = _parse_args(part.arguments) if part.kind == "function" else {"input": part.arguments}
            item = {"functionCall": {"name": part.name, "args": args}}
        else:
            item = _media_part(part)
        if item is None:
            continue
        if signature is not None and ("text" in item or "functionCall" in item):
            item["thoughtSignature"] = signature
            signature = None
        out.append(item)
    if signature is not None and out and "thoughtSignature" not in out[-1]:
        out[-1]["thoughtSignature"] = signature  # Gemini 3 signs the last part of a text answer
    return out


def _user_parts(parts: list[ir.Part], call_names: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ir.TextPart):
            if part.text:
                out.append({"text": part.text})
        elif isinstance(part, ir.ToolResultPart):
            text = "\n".join(c.text for c in part.content if isinstance(c, ir.TextPart))
            # "output"/"error" keys per https://ai.google.dev/api/caching#FunctionResponse;
            # any other key is read as the output, so {"content": ...} is the plain result.
            response = {"error": text} if part.is_error else {"content": text}
            name = call_names.get(part.call_id, part.call_id)
            out.append({"functionResponse": {"name": name, "response": response}})
            media.extend(m for c in part.content if (m := _media_part(c)) is not None)
        elif isinstance(part, ir.ToolCallPart | ir.ReasoningPart):
            continue  # not user content
        elif (item := _media_part(part)) is not None:
            out.append(item)
    return out + media  # images a tool returned follow the function responses


def _parse_args(arguments: str) -> dict[str, Any]:
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        return {}  # a model's malformed arguments must not fail the next turn
    return value if isinstance(value, dict) else {}


def _media_part(part: Any) -> dict[str, Any] | None:
    if isinstance(part, ir.ImagePart):
        return _blob(part.url, part.data, part.media_type, None, "image/jpeg")
    if isinstance(part, ir.FilePart):
        if part.file_id and not part.data and not part.url:
            uri = part.file_id
            if uri.startswith("files/"):  # a Gemini Files API name
                uri = _FILES_BASE + uri
            if not uri.startswith(("https://", "http://", "gs://")):
                raise ir.ConversionError(f"file_id {part.file_id!r} is not a Gemini file; send the file inline", "messages")
            return {"fileData": {"mimeType": part.media_type or _guess_mime(part.filename or uri, "application/pdf"), "fileUri": uri}}
        return _blob(part.url, part.data, part.media_type, part.filename, "application/pdf")
    if isinstance(part, ir.AudioPart):
        return {"inlineData": {"mimeType": f"audio/{part.format}", "data": part.data}}
    return None


def _blob(url: str | None, data: str | None, media_type: str | None, filename: str | None, default: str) -> dict[str, Any] | None:
    if data:
        return {"inlineData": {"mimeType": media_type or _guess_mime(filename, default), "data": data}}
    if not url:
        return None
    if url.startswith("data:"):
        match = _DATA_URL.match(url)
        if match is None:
            raise ir.ConversionError("malformed data URL", "messages")
        payload = match["data"]
        if ";base64" not in match["params"]:
            payload = base64.b64encode(unquote_to_bytes(payload)).decode()
        return {"inlineData": {"mimeType": match["mime"] or media_type or default, "data": payload}}
    # http(s) URLs: the relay inlines them through its SSRF guard before sending (relay.media);
    # a URL left here is one Gemini reads itself (GeminiAdaptor.reads_media_url: Files API, YouTube).
    return {"fileData": {"mimeType": media_type or _guess_mime(urlsplit(url).path, default), "fileUri": url}}


def _guess_mime(name: str | None, default: str) -> str:
    if not name:
        return default
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _MIME_BY_EXT.get(ext) or mimetypes.guess_type(name)[0] or default


def _tools(tools: list[ir.ToolDef]) -> tuple[list[dict[str, Any]], list[str]]:
    """`tools` entries and the declared function names (https://ai.google.dev/api/caching#Tool)."""
    declarations: list[dict[str, Any]] = []
    builtins: list[dict[str, Any]] = []
    for tool in tools:
        if tool.kind == "function":
            declaration: dict[str, Any] = {"name": tool.name}
            if tool.description:
                declaration["description"] = tool.description
            parameters = clean_schema(tool.parameters) if tool.parameters else {}
            # An OBJECT without properties is a 400 ("should be non-empty for OBJECT type"):
            # a function without arguments is declared without parameters.
            if parameters.get("properties") or parameters.get("type") not in (None, "object"):
                declaration["parameters"] = parameters
            declarations.append(declaration)
        elif tool.kind == "builtin" and (tool.builtin_type or tool.name or "").startswith("web_search"):
            if {"googleSearch": {}} not in builtins:
                builtins.append({"googleSearch": {}})  # https://ai.google.dev/gemini-api/docs/google-search
        # other builtin and custom (free-text) tools have no Gemini equivalent: left out
    out = [{"functionDeclarations": declarations}] if declarations else []
    return out + builtins, [d["name"] for d in declarations]


def _tool_choice(choice: ir.ToolChoice, names: list[str]) -> dict[str, Any]:
    """https://ai.google.dev/api/caching#FunctionCallingConfig"""
    if choice.mode == "none":
        return {"mode": "NONE"}
    if choice.mode == "required":
        return {"mode": "ANY"}
    if choice.mode == "tool" and choice.name in names:
        return {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    return {"mode": "AUTO"}


def _generation_config(request: ir.Request) -> dict[str, Any]:
    """https://ai.google.dev/api/generate-content#generationconfig"""
    config: dict[str, Any] = {}
    for key, value in (
        ("maxOutputTokens", request.max_output_tokens),
        ("temperature", request.temperature),
        ("topP", request.top_p),
        ("topK", request.top_k),
        ("seed", request.seed),
    ):
        if value is not None:
            config[key] = value
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.n is not None:
        config["candidateCount"] = 1  # the relay only converts single-choice requests
    fmt = request.response_format
    if fmt is not None and fmt.type in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        if fmt.type == "json_schema" and fmt.schema:
            config["responseSchema"] = clean_schema(fmt.schema)
    thinking = _thinking_config(request.reasoning)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    return config


def _thinking_config(reasoning: ir.Reasoning | None) -> dict[str, Any] | None:
    """https://ai.google.dev/gemini-api/docs/thinking: budget 0 turns thinking off, -1 lets the
    model decide; includeThoughts returns thought summaries as `thought: true` parts."""
    if reasoning is None:
        return None
    if reasoning.enabled is False:
        return {"thinkingBudget": 0}
    if reasoning.budget_tokens is not None:
        budget = min(max(reasoning.budget_tokens, 0), MAX_BUDGET)
    elif reasoning.effort in EFFORT_BUDGET:
        budget = EFFORT_BUDGET[reasoning.effort]
    elif reasoning.enabled or reasoning.effort or reasoning.summary:
        budget = -1
    else:
        return None
    return {"thinkingBudget": budget, "includeThoughts": True}


# --------------------------------------------------------------------------------------- response


def finish_reason(value: Any, has_tool_calls: bool) -> ir.StopReason:
    """https://ai.google.dev/api/generate-content#FinishReason"""
    reason = _FINISH.get(value, "stop") if isinstance(value, str) else "stop"
    return "tool_calls" if reason == "stop" and has_tool_calls else reason


def usage_from_gemini(meta: Any) -> tuple[ir.Usage, int]:
    """(Usage, reasoning tokens) from usageMetadata. promptTokenCount already includes the
    cached tokens (https://ai.google.dev/api/generate-content#UsageMetadata), as the IR wants;
    tool-use prompt tokens (Google Search results) are input too; thoughts are billed as output."""
    if not isinstance(meta, dict):
        return ir.Usage(), 0

    def number(key: str) -> int:
        value = meta.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    thoughts = number("thoughtsTokenCount")
    usage = ir.Usage(
        prompt_tokens=number("promptTokenCount") + number("toolUsePromptTokenCount"),
        completion_tokens=number("candidatesTokenCount") + thoughts,
        cached_tokens=number("cachedContentTokenCount"),
    )
    return usage, thoughts


def call_id(response_id: str | None, index: int) -> str:
    """Gemini gives function calls no id: derive one, stable for a given response, and distinct
    across the turns of a conversation when the response has an id (Anthropic callers reject
    duplicate tool_use ids)."""
    tag = re.sub(r"[^A-Za-z0-9]", "", response_id or "")[:16]
    return f"call_{tag}_{index}" if tag else f"call_{index}"


def read_parts(parts: Any, response_id: str | None, start: int = 0) -> list[ir.Part]:
    """IR parts from a Content's `parts`, in order; function calls are numbered from `start`."""
    out: list[ir.Part] = []
    calls = start
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        signature = part.get("thoughtSignature") if isinstance(part.get("thoughtSignature"), str) else None
        if isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            if signature:
                out.append(ir.ReasoningPart(signature=signature))
            given = call.get("id")
            ident = given if isinstance(given, str) and given else call_id(response_id, calls)
            calls += 1
            args = call.get("args")
            arguments = orjson.dumps(args if isinstance(args, dict) else {}).decode()
            out.append(ir.ToolCallPart(id=ident, name=str(call.get("name") or ""), arguments=arguments))
        elif isinstance(part.get("text"), str):
            if part.get("thought") is True:
                last = out[-1] if out else None
                if isinstance(last, ir.ReasoningPart) and last.text and last.signature is None:
                    last.text += part["text"]  # one thought, split over parts
                    last.signature = signature
                else:
                    out.append(ir.ReasoningPart(text=part["text"], signature=signature))
                continue
            if signature:
                out.append(ir.ReasoningPart(signature=signature))
            if part["text"]:
                if out and isinstance(out[-1], ir.TextPart):  # streamed-together text stays one part
                    out[-1].text += part["text"]
                else:
                    out.append(ir.TextPart(text=part["text"]))
        elif signature:
            out.append(ir.ReasoningPart(signature=signature))
        # inlineData output, executableCode, codeExecutionResult: no IR output part for them
    return out


def response_to_ir(payload: Any, *, model: str = "") -> ir.Response:
    """A GenerateContentResponse -> IR (candidate 0; the relay never asks for more)."""
    if not isinstance(payload, dict):
        raise ir.ConversionError("the Gemini response is not a JSON object")
    response_id = payload.get("responseId") if isinstance(payload.get("responseId"), str) else None
    usage, thoughts = usage_from_gemini(payload.get("usageMetadata"))
    result = ir.Response(
        id=response_id or f"gemini-{uuid.uuid4().hex}",
        model=str(payload.get("modelVersion") or model),
        usage=usage,
        reasoning_tokens=thoughts,
        created=int(time.time()),
    )
    candidates = payload.get("candidates")
    candidate = candidates[0] if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict) else None
    if candidate is None:
        feedback = payload.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            result.stop_reason = "content_filter"  # the prompt itself was blocked
        return result
    content = candidate.get("content")
    result.parts = read_parts(content.get("parts") if isinstance(content, dict) else None, response_id)
    has_calls = any(isinstance(p, ir.ToolCallPart) for p in result.parts)
    result.stop_reason = finish_reason(candidate.get("finishReason"), has_calls)
    return result
