"""PASS / FAIL / SKIP judgement of one HTTP answer, exactly as a client received it.

Pure functions: `judge(variant, status, body, content_type)` looks at the status, the raw body
bytes and the content type, nothing else. The format readers in `answers` turn the body (or
the Server-Sent Events of a stream, checked event by event) into an `Answer`; this module decides
the SKIP rules and what each variant kind requires of the answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from .answers import (
    Answer,
    Bad,
    ToolCall,
    chat_answer,
    chat_stream_answer,
    claude_answer,
    claude_stream_answer,
    error_message,
    parse_sse,
    response_answer,
    response_stream_answer,
)

__all__ = [
    "FAIL",
    "PASS",
    "SKIP",
    "Verdict",
    "is_retryable",
    "judge",
    "persistent_failure",
    "skip_reason",
]

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
NO_CHANNEL_CODES = {"model_not_available", "model_not_found"}
NO_CHANNEL_RE = re.compile(
    r"no (available |enabled )?channels?\b|model[_ ]not[_ ](available|found)|not available to group", re.I
)
NO_STREAM_RE = re.compile(r"stream(ing)?\b.*\b(not supported|unsupported|is not available)", re.I)
TOOL_NAME = "get_weather"
STRUCTURED_TOOL = "topic_classifier"


class VariantLike(Protocol):
    api: str
    kind: str
    stream: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: str  # PASS | FAIL | SKIP
    reason: str = ""


def _json(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None


def _error_code(payload: Any) -> str:
    err = payload.get("error") if isinstance(payload, dict) else None
    return str(err.get("code") or err.get("type") or "") if isinstance(err, dict) else ""


def _describe(body: bytes) -> str:
    msg = error_message(_json(body))
    if msg:
        return msg
    text = body.decode("utf-8", "replace").strip()
    return text[:200] or "empty body"


# ------------------------------------------------------------------------------------ skips
def skip_reason(variant: VariantLike, status: int, body: bytes) -> str | None:
    """Why this non-2xx answer means "the deployment cannot do this" rather than a failure."""
    if 200 <= status < 300:
        return None
    payload = _json(body)
    msg = error_message(payload) or body.decode("utf-8", "replace")
    if status in (404, 405) and not _is_no_channel(body):
        relayed = "upstream" in msg.lower() or "upstream" in _error_code(payload)
        return f"{'upstream' if relayed else 'route'} answers {status}"
    if _is_no_channel(body):
        return "no channel for model"
    if variant.kind == "vision" and status == 400 and "image" in msg.lower():
        return "model takes no images"
    if variant.stream and status == 400 and NO_STREAM_RE.search(msg):
        return "streaming unsupported"
    return None


def _is_no_channel(body: bytes) -> bool:
    payload = _json(body)
    if _error_code(payload) in NO_CHANNEL_CODES:
        return True
    return bool(NO_CHANNEL_RE.search(error_message(payload) or ""))


def is_retryable(status: int, body: bytes) -> bool:
    """A 5xx that is not a definite "no channel" answer: worth another try."""
    return status >= 500 and not _is_no_channel(body)


def persistent_failure(status: int, body: bytes) -> Verdict:
    """The verdict once every retry of a 5xx has failed too (the report shows the attempts)."""
    return Verdict(SKIP, f"persistent {status}: {_describe(body)}")


# ------------------------------------------------------------------------------------ judge
def judge(variant: VariantLike, status: int, body: bytes, content_type: str | None = None) -> Verdict:
    """PASS, FAIL with a reason, or SKIP with why, for one answer to `variant`."""
    skip = skip_reason(variant, status, body)
    if skip:
        return Verdict(SKIP, skip)
    if not 200 <= status < 300:
        return Verdict(FAIL, f"HTTP {status}: {_describe(body)}")
    try:
        answer = _read_stream(variant, body, content_type) if variant.stream else _read_body(variant, body)
        _check_answer(variant, answer)
    except Bad as bad:
        return Verdict(FAIL, str(bad))
    except (AttributeError, TypeError, ValueError, KeyError) as exc:  # a shape no check foresaw
        return Verdict(FAIL, f"malformed answer: {type(exc).__name__}: {exc}")
    return Verdict(PASS)


def _read_body(variant: VariantLike, body: bytes) -> Answer:
    payload = _json(body)
    if not isinstance(payload, dict):
        raise Bad("body is not a JSON object" if body.strip() else "empty body")
    msg = error_message(payload)
    if msg:
        raise Bad(f"error: {msg}")
    return {"chat": chat_answer, "response": response_answer, "claude": claude_answer}[variant.api](payload)


def _read_stream(variant: VariantLike, body: bytes, content_type: str | None) -> Answer:
    if content_type is not None and "text/event-stream" not in content_type.lower():
        payload = _json(body)
        msg = error_message(payload)
        if msg:
            raise Bad(f"error: {msg}")
        raise Bad(f"not a stream: content-type {content_type or 'missing'}")
    events = parse_sse(body.decode("utf-8", "replace"))
    if not events:
        raise Bad("empty stream")
    reader = {"chat": chat_stream_answer, "response": response_stream_answer, "claude": claude_stream_answer}
    return reader[variant.api](events)


def _args_object(call: ToolCall) -> dict[str, Any]:
    args = call.arguments
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            raise Bad(f"{call.name} arguments are not JSON: {args[:60]!r}") from None
    if not isinstance(args, dict):
        raise Bad(f"{call.name} arguments are not a JSON object")
    return args


def _check_structured(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise Bad(f"{where} is not a JSON object")
    missing = [k for k in ("topic", "confidence") if k not in value]
    if missing:
        raise Bad(f"{where} lacks {' and '.join(missing)}")
    if not isinstance(value["topic"], str):
        raise Bad(f"{where}: topic is not a string")
    if isinstance(value["confidence"], bool) or not isinstance(value["confidence"], int | float):
        raise Bad(f"{where}: confidence is not a number")


def _check_answer(variant: VariantLike, answer: Answer) -> None:
    if not answer.text.strip() and not answer.calls:
        raise Bad("empty answer")
    for call in answer.calls:
        _args_object(call)
    if variant.kind == "tools":
        if not answer.calls:
            raise Bad("no tool call")
        if not any(c.name == TOOL_NAME for c in answer.calls):
            raise Bad(f"called {answer.calls[0].name!r}, not {TOOL_NAME}")
    elif variant.kind == "structured":
        if variant.api == "claude":
            call = next((c for c in answer.calls if c.name == STRUCTURED_TOOL), None)
            if call is None:
                raise Bad(f"no {STRUCTURED_TOOL} tool_use")
            _check_structured(_args_object(call), f"{STRUCTURED_TOOL} input")
            return
        if not answer.text.strip():
            raise Bad("no text for structured output")
        try:
            value = json.loads(answer.text)
        except ValueError:
            raise Bad(f"text is not JSON: {answer.text.strip()[:60]!r}") from None
        _check_structured(value, "JSON")
