"""The internal representation every conversion goes through.

A typed superset of OpenAI Chat Completions, OpenAI Responses and Anthropic Messages, so that
nothing both sides can express is lost on the way (thinking signatures, encrypted reasoning,
cache-control marks, cache-write usage survive; the Chat wire format as a pivot would drop them).

Conventions every converter follows:
- `Request.system` holds the leading instructions (Chat system/developer messages at the start,
  Responses `instructions`, Anthropic `system`). System or developer messages that appear later
  in a conversation stay in `messages` with their role; a target that cannot place them there
  folds their text into the nearest user turn (never fails the request).
- Tool results are `ToolResultPart`s inside a message of role "tool" (one message may carry
  several results, as Anthropic's user turn does); the target format regroups them as it needs.
- Assistant output is a list of parts in order: reasoning, text, tool calls, as produced.
- JSON arguments stay strings (`ToolCallPart.arguments`) exactly as the model produced them.
- `Usage.prompt_tokens` includes cached and cache-write tokens (OpenAI's convention). A
  converter reading Anthropic usage adds `cache_read_input_tokens` and
  `cache_creation_input_tokens` into it; one writing Anthropic usage subtracts them again.
- Anything a format carries that the IR has no field for goes in `extra` (request level), and
  `source_format` says which format that was: a same-format target passes it through; other
  formats take only the keys that mean the same to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from billing.pricing import Usage

CacheControl = dict[str, Any]  # Anthropic's {"type": "ephemeral", "ttl": "5m" | "1h"}


# --------------------------------------------------------------------------------------- content


@dataclass(slots=True)
class TextPart:
    text: str
    cache_control: CacheControl | None = None
    # Responses / Chat annotations (url citations), kept for same-format round trips.
    annotations: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class ImagePart:
    """An image by URL (http(s) or data:) or as inline base64 `data` with its `media_type`."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None  # OpenAI "low" | "high" | "auto"
    cache_control: CacheControl | None = None


@dataclass(slots=True)
class FilePart:
    """A document (PDF, text): inline base64 `data`, a `url`, or a provider `file_id`."""

    data: str | None = None
    url: str | None = None
    file_id: str | None = None
    filename: str | None = None
    media_type: str | None = None
    cache_control: CacheControl | None = None


@dataclass(slots=True)
class AudioPart:
    data: str  # base64
    format: str  # "wav", "mp3", ...


@dataclass(slots=True)
class ReasoningPart:
    """Model reasoning. `signature` is Anthropic's thinking signature; `encrypted` is an
    Anthropic redacted_thinking `data` or an OpenAI Responses `encrypted_content`; `id` is the
    Responses reasoning item id; `summary` the Responses summary texts."""

    text: str = ""
    signature: str | None = None
    encrypted: str | None = None
    redacted: bool = False
    id: str | None = None
    summary: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ToolCallPart:
    id: str
    name: str
    arguments: str = ""  # JSON text, as produced
    kind: Literal["function", "custom", "builtin"] = "function"
    # For builtin/server tools (web_search, ...): the provider's own item, passed through.
    raw: dict[str, Any] | None = None
    cache_control: CacheControl | None = None


@dataclass(slots=True)
class ToolResultPart:
    call_id: str
    content: list[TextPart | ImagePart | FilePart] = field(default_factory=list)
    is_error: bool = False
    cache_control: CacheControl | None = None


Part = TextPart | ImagePart | FilePart | AudioPart | ReasoningPart | ToolCallPart | ToolResultPart

Role = Literal["system", "developer", "user", "assistant", "tool"]


@dataclass(slots=True)
class Message:
    role: Role
    parts: list[Part] = field(default_factory=list)
    name: str | None = None


# --------------------------------------------------------------------------------------- request


@dataclass(slots=True)
class ToolDef:
    """A tool the model may call. `kind="function"` tools have a JSON-schema `parameters`;
    builtin tools (web_search, code_interpreter, namespace, ...) keep their provider item in `raw`."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    kind: Literal["function", "custom", "builtin"] = "function"
    builtin_type: str | None = None  # e.g. "web_search", "web_search_preview", "namespace"
    raw: dict[str, Any] | None = None
    cache_control: CacheControl | None = None


@dataclass(slots=True)
class ToolChoice:
    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None  # with mode "tool"


@dataclass(slots=True)
class ResponseFormat:
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


@dataclass(slots=True)
class Reasoning:
    """effort: "minimal" | "low" | "medium" | "high"; budget_tokens: Anthropic/Gemini budget;
    enabled False = thinking explicitly off; summary: Responses "auto" | "concise" | "detailed"."""

    effort: str | None = None
    budget_tokens: int | None = None
    enabled: bool | None = None
    summary: str | None = None


@dataclass(slots=True)
class Request:
    model: str
    messages: list[Message] = field(default_factory=list)
    system: list[TextPart] = field(default_factory=list)
    tools: list[ToolDef] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    n: int | None = None
    stream: bool = False
    include_usage: bool = False  # the caller asked for usage in the stream (Chat stream_options)
    user: str | None = None
    metadata: dict[str, Any] | None = None
    # Responses state: the gateway resolves previous_response_id before conversion.
    store: bool | None = None
    previous_response_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The wire format `extra` came from ("chat", "responses", "messages"). Another format's
    # request_from_ir passes on only the extra keys that mean the same thing there: Claude
    # Code's `thinking` or `context_management` must not reach an OpenAI upstream.
    source_format: str | None = None
    # Chat callers only: the field reasoning text is returned in ("reasoning_content" as
    # DeepSeek, "reasoning" as OpenRouter, "thinking"), from the `?reasoning_format=` URL param.
    reasoning_format: str | None = None


# --------------------------------------------------------------------------------------- response

StopReason = Literal["stop", "length", "tool_calls", "content_filter", "refusal", "pause", "error"]


@dataclass(slots=True)
class Response:
    id: str
    model: str
    parts: list[Part] = field(default_factory=list)  # assistant output, in order
    stop_reason: StopReason = "stop"
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    reasoning_tokens: int = 0
    created: int = 0  # Unix seconds
    refusal: str | None = None


# --------------------------------------------------------------------------------------- stream events
# A decoder turns upstream wire events into these; an encoder turns them into the caller's wire
# events. Parts are numbered by `index` in output order; a part starts, gets deltas, stops.


@dataclass(slots=True)
class StreamStart:
    id: str
    model: str
    created: int = 0
    usage: Usage | None = None  # Anthropic reports input usage at message_start


@dataclass(slots=True)
class PartStart:
    index: int
    kind: Literal["text", "reasoning", "tool_call"]
    tool_call_id: str | None = None
    tool_name: str | None = None
    reasoning_id: str | None = None


@dataclass(slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(slots=True)
class ReasoningDelta:
    index: int
    text: str = ""
    signature: str | None = None  # Anthropic signature_delta
    encrypted: str | None = None  # redacted thinking / encrypted_content, whole


@dataclass(slots=True)
class ToolArgsDelta:
    index: int
    arguments: str


@dataclass(slots=True)
class PartStop:
    index: int


@dataclass(slots=True)
class StreamEnd:
    stop_reason: StopReason = "stop"
    usage: Usage | None = None
    stop_sequence: str | None = None
    reasoning_tokens: int = 0


@dataclass(slots=True)
class StreamError:
    message: str
    type: str = "server_error"
    code: str | None = None


StreamEvent = StreamStart | PartStart | TextDelta | ReasoningDelta | ToolArgsDelta | PartStop | StreamEnd | StreamError


class ConversionError(ValueError):
    """The input cannot be represented (bad shape, unknown content type): a 400 for the caller."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param
