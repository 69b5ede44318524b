"""Built-in (provider-hosted) tools on an upstream that lacks them: kept where the target format
has an equivalent, otherwise left out and named in the `X-Oneapi-Dropped-Tools` response
header, never a failed request (Codex sends `web_search`, Claude Code server tools, ...).
"""

from __future__ import annotations

import dataclasses
import re

from . import ir

# Anthropic's versioned server tools (web_search_20250305, bash_20250124, ...), as sent by an
# Anthropic caller: https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/overview
_ANTHROPIC_SERVER_TOOL = re.compile(r"_\d{8}$")


def _web_search(tool: ir.ToolDef) -> bool:
    return (tool.builtin_type or tool.name or "").startswith(("web_search", "google_search"))


def _kept(tool: ir.ToolDef, wire: str, model: str) -> bool:
    if wire == "responses":
        return True  # OpenAI hosts them all
    if wire == "messages":
        raw_type = str((tool.raw or {}).get("type", ""))
        return _web_search(tool) or bool(_ANTHROPIC_SERVER_TOOL.search(raw_type))
    if wire in ("gemini", "vertex"):
        return _web_search(tool)  # googleSearch
    if wire == "chat":
        return _web_search(tool) and "search" in model.lower()  # web_search_options
    return False  # Bedrock and anything else: function tools only


def fit(request: ir.Request, *, wire: str, model: str) -> tuple[ir.Request, list[str]]:
    """The request without the builtin tools `wire` cannot carry, and their names."""
    dropped = [t for t in request.tools if t.kind == "builtin" and not _kept(t, wire, model)]
    if not dropped:
        return request, []
    names = [t.name or t.builtin_type or "builtin" for t in dropped]
    kept = [t for t in request.tools if t not in dropped]
    choice = request.tool_choice
    if choice is not None and choice.mode == "tool" and choice.name in names:
        choice = ir.ToolChoice(mode="auto")  # forcing a tool that is gone would fail upstream
    return dataclasses.replace(request, tools=kept, tool_choice=choice), names
