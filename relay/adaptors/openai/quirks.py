"""What some OpenAI-compatible channel types need done to a Chat body before it goes out."""

from __future__ import annotations

from typing import Any

from oneapi_site import conf

from ...snapshot import ChannelEntry
from .structured import downgrade_json_schema, lacks_json_schema

OPENROUTER = 20


def channel_quirks(payload: dict[str, Any], *, channel: ChannelEntry, wire: str) -> dict[str, Any] | None:
    """The body mended for this channel, or None when it goes out as it is."""
    if wire != "chat":
        return None
    mended = payload
    if lacks_json_schema(channel):
        mended = downgrade_json_schema(mended) or mended
    sort = conf.settings.OPENROUTER_PROVIDER_SORT
    if channel.type == OPENROUTER and sort and "provider" not in mended:
        # https://openrouter.ai/docs/features/provider-routing#provider-sorting
        mended = {**mended, "provider": {"sort": sort}}
    return None if mended is payload else mended
