"""Stateful Responses on any backend: the gateway keeps each stored answer and expands
`previous_response_id` into the full input itself, so the upstream needs no state of its own.

https://platform.openai.com/docs/guides/conversation-state#passing-context-from-the-previous-response
Instructions are not carried over from the previous response (as the API documents).
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Any

import orjson

from .context import RelayContext
from .db import get_database
from .errors import NotFound

logger = logging.getLogger(__name__)

_LOAD = "SELECT input_items, response FROM stored_responses WHERE id = %s AND user_id = %s"
_STORE = (
    "INSERT INTO stored_responses (id, user_id, api_key_id, model, created_at, input_items, response)"
    " VALUES (%s, %s, %s, %s, %s, {json}, {json})"
)


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _as_items(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return list(value or [])


def _with_ids(items: list[Any]) -> list[Any]:
    """Input items listed by GET /input_items carry ids, as the API's do."""
    out = []
    for item in items:
        if isinstance(item, dict) and "id" not in item and item.get("type", "message") == "message":
            item = {"id": "msg_" + secrets.token_hex(12), "type": "message", **item}
        out.append(item)
    return out


async def expand_previous(ctx: RelayContext) -> None:
    """Replace `previous_response_id` by the conversation it stands for (before any routing)."""
    previous = ctx.payload.get("previous_response_id")
    ctx.input_items = _with_ids(_as_items(ctx.payload.get("input")))
    if not previous:
        return
    row = await get_database().fetchone(_LOAD, (str(previous), ctx.key.user_id))
    if row is None:
        raise NotFound(f"previous response with id '{previous}' not found", param="previous_response_id")
    earlier_input, earlier_response = _json(row[0]), _json(row[1])
    earlier_output = [item for item in earlier_response.get("output") or [] if isinstance(item, dict)]
    ctx.input_items = [*earlier_input, *earlier_output, *ctx.input_items]
    payload = {k: v for k, v in ctx.payload.items() if k != "previous_response_id"}
    payload["input"] = ctx.input_items
    ctx.payload, ctx.body, ctx.ir_request = payload, orjson.dumps(payload), None


async def store_response(ctx: RelayContext, response: Any) -> None:
    """Keep the answer unless the caller said store: false. A failure here is logged, never
    turned into a failed request: the answer was delivered and billed."""
    if ctx.payload.get("store") is False or not isinstance(response, dict) or not response.get("id"):
        return
    try:
        await _insert(ctx, response)
    except Exception:
        logger.exception("could not store response %s", response.get("id"))


async def _insert(ctx: RelayContext, response: dict[str, Any]) -> None:
    db = get_database()
    json_param = "CAST(%s AS jsonb)" if db.vendor == "postgresql" else "%s"
    await db.execute(
        _STORE.format(json=json_param),
        (
            str(response["id"]),
            ctx.key.user_id,
            ctx.key.key_id,
            ctx.model,
            db.timestamp(datetime.now(UTC)),
            orjson.dumps(ctx.input_items).decode(),
            orjson.dumps(response).decode(),
        ),
    )


def completed_response(end_bytes: bytes) -> Any:
    """The response object inside a stream's `response.completed` event (held back by the relay)."""
    for event in end_bytes.split(b"\n\n"):
        if b"response.completed" in event or b"response.incomplete" in event:
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    data = orjson.loads(line[5:])
                    return data.get("response") if isinstance(data, dict) else None
    return None
