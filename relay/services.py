"""relay_request: authenticate -> select -> hold -> call (retrying elsewhere) -> settle or refund.

Every path out of here either settles the hold (success, or a stream billed for what was
delivered) or refunds it with an error log row: nothing held is ever lost.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import orjson
from django.conf import settings

from billing.ledger import Hold, HoldOutcome, Ledger, Settlement
from billing.pricing import Price, Usage, cost_quota, estimate_hold

from . import pricing_lookup
from .adaptors import get_adaptor
from .asgi_io import Responder
from .cache import cache
from .context import RelayContext
from .db import get_database
from .errors import (
    AuthenticationFailed,
    InsufficientQuota,
    InvalidRequest,
    NotFound,
    RelayError,
    UpstreamError,
    render_openai,
)
from .keyauth import KeyEntry, PresentedKey, check_key, check_model_allowed, check_pin_allowed
from .selection import select_channel
from .snapshot import ChannelEntry
from .streaming import OpenAIChatStream
from .suspension import suspend_after_429
from .tokens import count_chat_prompt, count_text
from .upstream import open_upstream
from .usage import usage_from_openai

logger = logging.getLogger(__name__)

DONE_EVENT = b"data: [DONE]\n\n"


def ledger() -> Ledger:
    return Ledger(get_database())


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


def validate_payload(endpoint: str, payload: Any) -> str:
    if not isinstance(payload, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("you must provide a model parameter", param="model", code="missing_model")
    if endpoint == "chat":
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidRequest("messages must be a non-empty array", param="messages")
        if "stream" in payload and not isinstance(payload["stream"], bool):
            raise InvalidRequest("stream must be a boolean", param="stream")
    elif endpoint == "embeddings":
        if payload.get("input") in (None, "", []):
            raise InvalidRequest("input must be a string or a non-empty array", param="input")
    return model


def choose_channel(ctx: RelayContext) -> ChannelEntry:
    snapshot = cache.snapshot
    pinned = ctx.presented.pinned_channel
    if pinned is not None:
        channel = snapshot.channels.get(pinned)
        if channel is None:
            raise NotFound(f"channel {pinned} does not exist", code="channel_not_found")
        return channel
    return select_channel(snapshot, group=ctx.key.group, model=ctx.model, exclude=ctx.tried)


def max_output_tokens(payload: dict[str, Any]) -> int:
    for field in ("max_completion_tokens", "max_tokens"):
        value = payload.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return settings.DEFAULT_MAX_TOKEN


async def place_hold(ctx: RelayContext, price: Price) -> None:
    options = cache.snapshot.options
    if ctx.endpoint == "chat":
        prompt_estimate = len(ctx.body) // 4 + 1
        output = max_output_tokens(ctx.payload) * max(int(ctx.payload.get("n") or 1), 1)
    else:
        prompt_estimate, output = len(ctx.body) // 4 + 1, 0
    quota = estimate_hold(
        prompt_tokens=prompt_estimate + int(options["PreConsumedQuota"]),  # type: ignore[call-overload]
        max_output_tokens=output,
        price=price,
        group_ratio=ctx.key.group_ratio,
    )
    outcome = await ledger().hold(Hold(ctx.request_id, ctx.key.user_id, ctx.key.key_id, quota))
    if outcome is HoldOutcome.OK:
        ctx.held_quota, ctx.output_budget = quota, output
        return
    # Refused: the cached copy may be stale (key disabled, deleted, user disabled). Re-read it
    # so the caller gets the precise reason.
    fresh = await cache.reload_key(ctx.presented.digest)
    if fresh is None:
        raise AuthenticationFailed("invalid API key")
    check_key(fresh, client_ip=ctx.client_ip)
    if outcome is HoldOutcome.KEY_REFUSED:
        raise InsufficientQuota(f"this API key's remaining quota cannot cover this request (needs {quota})")
    raise InsufficientQuota(
        f"your account's quota cannot cover this request (needs {quota})", code="insufficient_user_quota"
    )


async def extend_hold(ctx: RelayContext) -> RelayError | None:
    """A stream outgrew its hold: hold one more output budget, or say why it cannot."""
    assert ctx.channel is not None
    price = pricing_lookup.price_for(cache.snapshot, ctx.channel, ctx.model)
    extra = estimate_hold(prompt_tokens=0, max_output_tokens=ctx.output_budget, price=price, group_ratio=ctx.key.group_ratio)
    outcome = await ledger().extend_hold(Hold(ctx.request_id, ctx.key.user_id, ctx.key.key_id, extra))
    if outcome is HoldOutcome.OK:
        ctx.held_quota += extra
        return None
    if outcome is HoldOutcome.KEY_REFUSED:
        return InsufficientQuota("this API key's quota ran out during the answer; it was cut here")
    return InsufficientQuota("your account's quota ran out during the answer; it was cut here", code="insufficient_user_quota")


def upstream_body(ctx: RelayContext, channel: ChannelEntry) -> tuple[bytes, bool]:
    """The body to send, and whether the client asked for the usage chunk itself."""
    mapped = channel.model_mapping.get(ctx.model, ctx.model)
    ctx.upstream_model = mapped
    payload = ctx.payload
    client_wants_usage = True
    changes: dict[str, Any] = {}
    if mapped != ctx.model:
        changes["model"] = mapped
    if ctx.is_stream:
        options = payload.get("stream_options")
        client_wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        if settings.ENFORCE_INCLUDE_USAGE and not client_wants_usage:
            changes["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    if not changes:
        return ctx.body, client_wants_usage  # pass the caller's bytes through untouched
    return orjson.dumps({**payload, **changes}), client_wants_usage


def settlement(ctx: RelayContext, *, quota: int, usage: Usage, refund: bool, status: int = 200, content: str = "") -> Settlement:
    return Settlement(
        request_id=ctx.request_id,
        user_id=ctx.key.user_id,
        key_id=ctx.key.key_id,
        channel_id=ctx.channel.id if ctx.channel else None,
        quota=quota,
        refund=refund,
        write_log=bool(cache.snapshot.options.get("LogConsumeEnabled", True)) or refund,
        username=ctx.key.username,
        key_name=ctx.key.key_name,
        model_name=ctx.model,
        upstream_model=ctx.upstream_model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        elapsed_ms=ctx.elapsed_ms,
        is_stream=ctx.is_stream,
        status_code=status,
        content=content,
    )


async def settle_usage(ctx: RelayContext, usage: Usage, content: str = "") -> int:
    price = pricing_lookup.price_for(cache.snapshot, ctx.channel, ctx.model)
    quota = cost_quota(usage, price, ctx.key.group_ratio)
    await ledger().settle(settlement(ctx, quota=quota, usage=usage, refund=False, content=content))
    return quota


async def refund(ctx: RelayContext, error: RelayError) -> None:
    try:
        await ledger().settle(settlement(ctx, quota=0, usage=Usage(), refund=True, status=error.status, content=error.message[:500]))
    except Exception:  # the stale-hold task settles it later; never mask the caller's error
        logger.exception("refund failed for %s", ctx.request_id)


def retry_budget(ctx: RelayContext) -> int:
    if ctx.presented.pinned_channel is not None:
        return 0
    return max(int(cache.snapshot.options.get("RetryTimes", 0)), 0)  # type: ignore[call-overload]


async def relay_request(ctx: RelayContext, out: Responder) -> None:
    check_model_allowed(ctx.key, ctx.model)
    try:
        ctx.channel = choose_channel(ctx)
    except NotFound:
        await cache.check_changes()  # maybe a channel was just added: look once more
        ctx.channel = choose_channel(ctx)
    await place_hold(ctx, pricing_lookup.price_for(cache.snapshot, ctx.channel, ctx.model))
    attempts = retry_budget(ctx) + 1
    last_error: RelayError | None = None
    for attempt in range(attempts):
        if attempt:
            try:
                ctx.channel = choose_channel(ctx)
            except RelayError:
                break  # nothing else to try: report the upstream's error
        assert ctx.channel is not None
        ctx.tried.add(ctx.channel.id)
        try:
            await attempt_once(ctx, ctx.channel, out)
            return
        except UpstreamError as err:
            last_error = err
            if err.upstream_status == 429:
                await suspend_after_429(ctx.channel.id, ctx.model)
            if not err.retryable or out.started:
                break
            logger.info("request %s: channel %s failed (%s), retrying", ctx.request_id, ctx.channel.id, err.message)
    assert last_error is not None
    await refund(ctx, last_error)
    raise last_error


async def attempt_once(ctx: RelayContext, channel: ChannelEntry, out: Responder) -> None:
    adaptor = get_adaptor(channel.protocol)
    body, client_wants_usage = upstream_body(ctx, channel)
    response = await open_upstream(adaptor.build_url(channel, ctx.endpoint), adaptor.build_headers(channel), body)
    try:
        if ctx.is_stream:
            await relay_stream(ctx, response, out, forward_usage_chunk=client_wants_usage)
        else:
            await relay_whole(ctx, response, out)
    finally:
        response.release()


async def relay_whole(ctx: RelayContext, response: aiohttp.ClientResponse, out: Responder) -> None:
    try:
        raw = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UpstreamError(f"the upstream connection failed mid-answer: {exc.__class__.__name__}", retryable=True) from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError("the upstream answered with invalid JSON", retryable=True) from None
    usage_obj = data.get("usage") if isinstance(data, dict) else None
    if isinstance(usage_obj, dict):
        usage = usage_from_openai(usage_obj)
    else:  # no usage reported: count what we can
        usage = Usage(prompt_tokens=count_chat_prompt(ctx.payload), completion_tokens=_count_answer(data))
    await settle_usage(ctx, usage)
    await out.send_json(200, raw)


def _count_answer(data: Any) -> int:
    total = 0
    for choice in (data.get("choices") or []) if isinstance(data, dict) else []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            total += count_text(message["content"])
    return total


async def relay_stream(
    ctx: RelayContext, response: aiohttp.ClientResponse, out: Responder, *, forward_usage_chunk: bool
) -> None:
    stream = OpenAIChatStream(forward_usage_chunk=forward_usage_chunk)
    failure: RelayError | None = None
    delivered = 0  # output tokens forwarded to the client
    # Long answers are billed as they go: past 90% of the output the hold covers, hold more;
    # when that is refused the answer stops at that event, so the cost never exceeds the hold.
    extend_at = max(ctx.output_budget * 9 // 10, 1) if ctx.output_budget else None
    try:
        async for piece in response.content.iter_any():
            batch: list[bytes] = []
            for event, tokens in stream.feed(piece):
                if extend_at is not None and delivered + tokens >= extend_at:
                    failure = await extend_hold(ctx)
                    if failure is not None:
                        break
                    extend_at += ctx.output_budget
                batch.append(event)
                delivered += tokens
            if batch:
                if not out.started:
                    await out.start_stream()
                await out.write(b"".join(batch))
            if out.client_gone or failure is not None:
                break
        else:
            tail = stream.finish()
            if tail and not out.client_gone:
                if not out.started:
                    await out.start_stream()
                await out.write(b"".join(event for event, _ in tail))
                delivered += sum(tokens for _, tokens in tail)
    except (aiohttp.ClientError, TimeoutError) as exc:
        failure = UpstreamError(
            f"the upstream stream broke off before the answer was complete ({exc.__class__.__name__})", retryable=True
        )
    if not out.started and not out.client_gone:
        # Nothing reached the client yet: this attempt can be retried on another channel.
        raise failure or UpstreamError("the upstream stream ended without any event", retryable=True)
    complete = stream.saw_done or stream.saw_finish
    if failure is None and not complete and not out.client_gone:
        failure = UpstreamError("the upstream stream ended before the answer was complete", retryable=False)
    if stream.usage is not None and failure is None and not out.client_gone:
        usage = stream.usage
    else:  # cut short: bill what the client received (the upstream's usage, if any, covers more)
        usage = Usage(prompt_tokens=count_chat_prompt(ctx.payload), completion_tokens=delivered)
    note = "client disconnected" if out.client_gone else (failure.message if failure else "")
    await settle_usage(ctx, usage, content=note)
    if out.client_gone:
        return
    if failure is not None:
        await out.write(b"data: " + render_openai(failure, ctx.request_id) + b"\n\n")
    await out.end(DONE_EVENT)
