"""The `?thinking=` and `?reasoning_format=` URL parameters, as the original's fork documents them.

`thinking=true|1|yes|on` turns reasoning on for models that have it, in the caller's own field
(Chat `reasoning_effort`, Responses `reasoning.effort`, Claude `thinking`), before routing, so
pass-through and conversion both see it. `reasoning_effort=` picks the effort. Chat callers may
choose where reasoning text comes back with `reasoning_format=reasoning_content|reasoning|thinking`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

from .errors import InvalidRequest

TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}
EFFORTS = {"minimal", "low", "medium", "high"}
REASONING_FORMATS = {"reasoning_content", "reasoning", "thinking"}
# Models that reason when asked (the fork's list); others would refuse reasoning fields.
REASONING_MODEL = re.compile(
    r"^(o\d|gpt-5|.*deep-research|grok|deepseek-r1|deepseek-v4|.*reasoner|claude|gemini-(2\.5|3)|qwen3)", re.I
)


def parse(query_string: bytes) -> dict[str, str]:
    if not query_string:
        return {}
    return {k: v[-1] for k, v in parse_qs(query_string.decode("latin-1")).items() if v}


def apply(format_name: str, payload: dict[str, Any], query: dict[str, str]) -> tuple[str | None, bool]:
    """Apply `thinking` to the payload in place; return the chosen Chat reasoning_format and
    whether the payload changed (then the caller's bytes can no longer be passed through)."""
    reasoning_format = query.get("reasoning_format")
    if reasoning_format is not None and reasoning_format not in REASONING_FORMATS:
        raise InvalidRequest(f"reasoning_format must be one of {', '.join(sorted(REASONING_FORMATS))}", param="reasoning_format")
    thinking = query.get("thinking", "").lower()
    if thinking and thinking not in TRUE | FALSE:
        raise InvalidRequest("thinking must be true or false", param="thinking")
    model = str(payload.get("model", ""))
    before = repr(payload) if thinking else ""
    if thinking in TRUE and REASONING_MODEL.match(model):
        effort = query.get("reasoning_effort") or ("medium" if re.match(r"^(o\d|.*deep-research)", model) else "high")
        if effort not in EFFORTS:
            raise InvalidRequest(f"reasoning_effort must be one of {', '.join(sorted(EFFORTS))}", param="reasoning_effort")
        _enable(format_name, payload, model, effort)
    elif thinking in FALSE and model.lower().startswith("qwen3"):
        payload.setdefault("chat_template_kwargs", {})["enable_thinking"] = False
    changed = bool(thinking) and repr(payload) != before
    return (reasoning_format if format_name == "chat" else None), changed


def _enable(format_name: str, payload: dict[str, Any], model: str, effort: str) -> None:
    if format_name == "chat":
        payload.setdefault("reasoning_effort", effort)
        if model.lower().startswith("qwen3"):  # vLLM / OpenAI-compatible Qwen3 servers
            payload.setdefault("chat_template_kwargs", {})["enable_thinking"] = True
    elif format_name == "responses":
        reasoning = payload.setdefault("reasoning", {})
        if isinstance(reasoning, dict):
            reasoning.setdefault("effort", effort)
    elif format_name == "messages" and "thinking" not in payload:
        max_tokens = int(payload.get("max_tokens") or 0)
        if max_tokens > 1024:  # Anthropic needs budget_tokens >= 1024 and < max_tokens
            payload["thinking"] = {"type": "enabled", "budget_tokens": max(1024, min(max_tokens // 2, 16000))}
            for key in ("temperature", "top_p", "top_k"):  # refused alongside thinking
                payload.pop(key, None)
