"""The relay's billing steps: hold before (or alongside) the call, extend while streaming, settle or refund."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from billing.ledger import Hold, HoldOutcome, Ledger, Settlement
from billing.pricing import Price, Usage, cost_quota, estimate_hold
from oneapi_site import conf

from . import metrics, pricing_lookup
from .cache import cache
from .context import RelayContext
from .db import get_database
from .errors import AuthenticationFailed, InsufficientQuota, RelayError
from .keyauth import check_key

logger = logging.getLogger(__name__)


def ledger() -> Ledger:
    return Ledger(get_database())


def max_output_tokens(payload: dict[str, Any]) -> int:
    for field in ("max_completion_tokens", "max_tokens"):
        value = payload.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return conf.settings.DEFAULT_MAX_TOKEN


# Holding first and calling the upstream after puts a database round trip in front of every
# request. When the key and its user, as last loaded, hold OVERLAP_FUNDING times the hold or
# more, a refusal is all but impossible, so the hold runs while the request goes upstream. (The
# original One API skips the hold altogether for such users, its "trusted" shortcut, and can then
# overspend; here the hold still decides.) Nothing reaches the client and nothing is settled
# before it is granted (`confirm_hold`). If it is refused after all (a key disabled since it was
# cached, a quota spent meanwhile on other workers), the upstream's answer is dropped unread, the
# caller gets the refusal, and that key and user hold first again on this worker for
# REFUSAL_MEMORY_SECONDS: at most one upstream call per worker and minute is made for nothing.
OVERLAP_FUNDING = 100
REFUSAL_MEMORY_SECONDS = 60.0
_refused_until: dict[tuple[str, int], float] = {}  # ("key" | "user", id) -> time.monotonic() deadline


def hold_size(ctx: RelayContext, price: Price) -> tuple[int, int]:
    """(quota to hold, output tokens it covers) for this request."""
    options = cache.snapshot.options
    if ctx.format.endpoint == "chat":
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
    return quota, output


def may_overlap(ctx: RelayContext, quota: int) -> bool:
    if not conf.settings.RELAY_HOLD_OVERLAP:
        return False
    key, funded = ctx.key, quota * OVERLAP_FUNDING
    if (not key.unlimited_quota and key.remain_quota < funded) or key.user_quota < funded:
        return False
    if _refused_until:
        now = time.monotonic()
        if _refused_until.get(("key", key.key_id), 0.0) > now or _refused_until.get(("user", key.user_id), 0.0) > now:
            return False
    return True


async def place_hold(ctx: RelayContext, price: Price) -> None:
    """Hold this request's estimate, or start holding it (see OVERLAP_FUNDING): then
    `confirm_hold` must return before anything reaches the client."""
    quota, output = hold_size(ctx, price)
    if may_overlap(ctx, quota):
        ctx.pending_hold = asyncio.get_running_loop().create_task(_hold(ctx, quota, output))
        return
    await _hold(ctx, quota, output)


async def confirm_hold(ctx: RelayContext) -> None:
    """Wait for a hold started alongside the upstream call; raises its refusal."""
    if ctx.pending_hold is not None:
        await asyncio.shield(ctx.pending_hold)  # a caller gone meanwhile does not cancel the hold


async def finish_hold(ctx: RelayContext, error: RelayError) -> BaseException | None:
    """After a failed attempt: wait for a hold still under way, then refund what was held.
    Returns why nothing was held (its refusal), or None."""
    if ctx.pending_hold is not None:
        try:
            await ctx.pending_hold
        except BaseException as exc:  # refused (or failed): nothing held, nothing to refund
            return exc
    await refund(ctx, error)
    return None


async def _hold(ctx: RelayContext, quota: int, output: int) -> None:
    outcome = await ledger().hold(Hold(ctx.request_id, ctx.key.user_id, ctx.key.key_id, quota))
    if outcome is HoldOutcome.OK:
        ctx.held_quota, ctx.output_budget = quota, output
        return
    deadline = time.monotonic() + REFUSAL_MEMORY_SECONDS
    if len(_refused_until) > 10_000:  # bounded: forgetting only means overlapping again, once
        _refused_until.clear()
    _refused_until[("key", ctx.key.key_id)] = _refused_until[("user", ctx.key.user_id)] = deadline
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
    if await ledger().settle(settlement(ctx, quota=quota, usage=usage, refund=False, content=content)):
        channel = str(ctx.channel.id) if ctx.channel else ""
        metrics.usage(ctx.model, channel, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, quota)
    return quota


async def refund(ctx: RelayContext, error: RelayError) -> None:
    try:
        await ledger().settle(settlement(ctx, quota=0, usage=Usage(), refund=True, status=error.status, content=error.message[:500]))
    except Exception:  # the stale-hold task settles it later; never mask the caller's error
        logger.exception("refund failed for %s", ctx.request_id)


