"""The caller formats the relay speaks: what each route takes, how it is checked, how errors look."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import InvalidRequest, RelayError, render_anthropic, render_openai


def _require_model(payload: dict[str, Any]) -> str:
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("you must provide a model parameter", param="model", code="missing_model")
    return model


def _check_stream_flag(payload: dict[str, Any]) -> None:
    if "stream" in payload and not isinstance(payload["stream"], bool):
        raise InvalidRequest("stream must be a boolean", param="stream")


def _validate_chat(payload: dict[str, Any]) -> None:
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty array", param="messages")
    _check_stream_flag(payload)


def _validate_messages(payload: dict[str, Any]) -> None:
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: field required (a non-empty array)", param="messages")
    max_tokens = payload.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise InvalidRequest("max_tokens: field required (a positive integer)", param="max_tokens")
    _check_stream_flag(payload)


def _validate_messages_for_count(payload: dict[str, Any]) -> None:
    # https://docs.anthropic.com/en/api/messages-count-tokens: like Messages, without max_tokens.
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: field required (a non-empty array)", param="messages")


def _validate_responses(payload: dict[str, Any]) -> None:
    if "input" not in payload and not payload.get("previous_response_id"):
        raise InvalidRequest("input: field required", param="input")
    value = payload.get("input")
    if "input" in payload and not isinstance(value, (str, list)):
        raise InvalidRequest("input must be a string or an array of items", param="input")
    _check_stream_flag(payload)


def _validate_embeddings(payload: dict[str, Any]) -> None:
    if payload.get("input") in (None, "", []):
        raise InvalidRequest("input must be a string or a non-empty array", param="input")


def _chat_stream_error(error: RelayError, request_id: str | None) -> bytes:
    return b"data: " + render_openai(error, request_id) + b"\n\ndata: [DONE]\n\n"


def _messages_stream_error(error: RelayError, request_id: str | None) -> bytes:
    # https://docs.anthropic.com/en/api/messages-streaming#error-events
    return b"event: error\ndata: " + render_anthropic(error, request_id) + b"\n\n"


def _responses_stream_error(error: RelayError, request_id: str | None) -> bytes:
    # https://platform.openai.com/docs/api-reference/responses-streaming/error
    message = f"{error.message} (request id: {request_id})" if request_id else error.message
    body = {"type": "error", "code": error.code or error.type, "message": message, "param": error.param}
    return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"


@dataclass(frozen=True)
class CallerFormat:
    name: str  # "chat", "responses", "messages", "embeddings", "count_tokens"
    endpoint: str  # what the adaptor is asked for: "chat" or "embeddings"
    validate_body: Callable[[dict[str, Any]], None]
    render_error: Callable[[RelayError, str | None], bytes]
    stream_error: Callable[[RelayError, str | None], bytes] = _chat_stream_error
    streams: bool = True

    def validate(self, payload: Any) -> str:
        """Cheap checks before any quota is touched; returns the model asked for."""
        if not isinstance(payload, dict):
            raise InvalidRequest("the request body must be a JSON object")
        model = _require_model(payload)
        self.validate_body(payload)
        return model


FORMATS: dict[str, CallerFormat] = {
    "chat": CallerFormat("chat", "chat", _validate_chat, render_openai),
    "responses": CallerFormat("responses", "chat", _validate_responses, render_openai, _responses_stream_error),
    "messages": CallerFormat("messages", "chat", _validate_messages, render_anthropic, _messages_stream_error),
    "count_tokens": CallerFormat("count_tokens", "chat", _validate_messages_for_count, render_anthropic, streams=False),
    "embeddings": CallerFormat("embeddings", "embeddings", _validate_embeddings, render_openai, streams=False),
}
