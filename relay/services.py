"""relay_request: select a channel -> hold quota -> attempt (retrying elsewhere) -> settle or refund.

Every path out of here either settles the hold (success, or a stream billed for what was
delivered) or refunds it with an error log row: nothing held is ever lost.
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from . import ir, pricing_lookup
from .asgi_io import Responder
from .attempt import attempt_once
from .billing_flow import finish_hold, place_hold
from .cache import cache
from .context import RelayContext
from .converters import converter
from .errors import AuthenticationFailed, InvalidRequest, NotFound, RelayError, UpstreamError
from .keyauth import KeyEntry, PresentedKey, check_key, check_model_allowed, check_pin_allowed
from .ratelimit import choose_within_limits
from .responses_state import expand_previous
from .selection import select_channel
from .snapshot import ChannelEntry
from .suspension import after_upstream_error
from .tokens import count_ir_prompt

logger = logging.getLogger(__name__)


async def authenticate(presented: PresentedKey | None, client_ip: str | None) -> KeyEntry:
    if presented is None:
        raise AuthenticationFailed(
            "no API key given: send Authorization: Bearer sk-..., x-api-key or api-key", code="missing_api_key"
        )
    entry = await cache.key_entry(presented.digest)
    if entry is None:
        raise AuthenticationFailed("invalid API key")
    check_key(entry, client_ip=client_ip)
    check_pin_allowed(entry, presented)
    return entry


def choose_channel(ctx: RelayContext) -> ChannelEntry:
    snapshot = cache.snapshot
    pinned = ctx.presented.pinned_channel
    if pinned is not None:
        channel = snapshot.channels.get(pinned)
        if channel is None:
            raise NotFound(f"channel {pinned} does not exist", code="channel_not_found")
        return channel
    return select_channel(snapshot, group=ctx.key.group, model=ctx.model, exclude=ctx.tried)


def retry_budget(ctx: RelayContext) -> int:
    if ctx.presented.pinned_channel is not None:
        return 0
    return max(int(cache.snapshot.options.get("RetryTimes", 0)), 0)  # type: ignore[call-overload]


async def relay_request(ctx: RelayContext, out: Responder) -> None:
    check_model_allowed(ctx.key, ctx.model)
    if ctx.format.name == "responses":
        await expand_previous(ctx)
    try:
        ctx.channel = await choose_within_limits(ctx, choose_channel)
    except NotFound:
        await cache.check_changes()  # maybe a channel was just added: look once more
        ctx.channel = await choose_within_limits(ctx, choose_channel)
    await place_hold(ctx, pricing_lookup.price_for(cache.snapshot, ctx.channel, ctx.model))
    try:
        await attempt_with_retries(ctx, out)
    except BaseException as exc:
        # Whatever went wrong after the hold (an upstream error, input the converter refused,
        # a bug, a cancellation), the hold goes back. A request already settled is left alone:
        # settlement happens once per request id.
        error = exc if isinstance(exc, RelayError) else RelayError("internal error in the gateway")
        refused = await asyncio.shield(finish_hold(ctx, error))
        if isinstance(refused, RelayError) and isinstance(exc, RelayError) and refused is not exc:
            raise refused from None  # a hold placed alongside the call was refused: that, not the attempt, is the answer
        raise


async def attempt_with_retries(ctx: RelayContext, out: Responder) -> None:
    attempts = retry_budget(ctx) + 1
    last_error: RelayError | None = None
    for attempt in range(attempts):
        if attempt:
            try:
                ctx.channel = await choose_within_limits(ctx, choose_channel)
            except RelayError:
                break  # nothing else to try: report the upstream's error
        assert ctx.channel is not None
        ctx.tried.add(ctx.channel.id)
        try:
            await attempt_once(ctx, ctx.channel, out)
            return
        except UpstreamError as err:
            last_error = err
            await after_upstream_error(ctx.channel, ctx.model, err)
            if not err.retryable or out.started:
                break
            logger.info("request %s: channel %s failed (%s), retrying", ctx.request_id, ctx.channel.id, err.message)
    assert last_error is not None
    raise last_error


async def count_tokens(ctx: RelayContext, out: Responder) -> None:
    """POST /v1/messages/count_tokens: the prompt's size, counted locally and free of charge.
    https://docs.anthropic.com/en/api/messages-count-tokens"""
    check_model_allowed(ctx.key, ctx.model)
    payload = {**ctx.payload, "max_tokens": ctx.payload.get("max_tokens") or 1}
    try:
        request = converter("messages").request_to_ir(payload)
    except ir.ConversionError as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None
    await out.send_json(200, orjson.dumps({"input_tokens": count_ir_prompt(request)}))
