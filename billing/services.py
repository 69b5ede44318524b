"""Writes on billing outside the relay path (through the ORM)."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import ApiKey, User, UserStatus

from .models import ChargeStatus, ConsumeLog, LogType, RequestCharge

STALE_AFTER = timedelta(hours=1)


def stale_holds(cutoff: datetime) -> QuerySet[RequestCharge]:
    """Charges still held that were opened before `cutoff` (read through the partial index)."""
    return RequestCharge.objects.filter(status=ChargeStatus.HELD, created_at__lt=cutoff)


def release_stale_holds(*, older_than: timedelta = STALE_AFTER) -> int:
    """Charge the held estimate of requests whose worker died before settling them.

    A request older than an hour cannot still be running (RELAY_TIMEOUT or the stream idle
    timeout ends it first), so its hold is final. It is charged, not refunded, because the
    upstream may have served it: the conservative choice, as the original's fork makes.
    """
    done = 0
    for charge_id in stale_holds(timezone.now() - older_than).values_list("pk", flat=True):
        with transaction.atomic():
            claimed = RequestCharge.objects.filter(pk=charge_id, status=ChargeStatus.HELD).update(
                status=ChargeStatus.SETTLED, settled_at=timezone.now(), quota=F("held_quota")
            )
            if not claimed:
                continue
            charge = RequestCharge.objects.get(pk=charge_id)
            # Key before user: the ledger's order (billing/ledger.py), so the two never deadlock.
            if charge.api_key_id:
                ApiKey.objects.filter(pk=charge.api_key_id).update(used_quota=F("used_quota") + charge.quota)
            User.objects.filter(pk=charge.user_id).update(
                used_quota=F("used_quota") + charge.quota, request_count=F("request_count") + 1
            )
            ConsumeLog.objects.create(
                type=LogType.CONSUME,
                user_id=charge.user_id,
                api_key_id=charge.api_key_id,
                quota=charge.quota,
                request_id=charge.request_id,
                status_code=500,
                content="settled at the held estimate: the request never finished (worker stopped)",
            )
            done += 1
    return done


class ToolChargeOutcome(enum.Enum):
    CHARGED = "charged"
    ALREADY_CHARGED = "already_charged"  # the same call id was billed before: not billed twice
    REFUSED = "refused"  # the user is disabled or its quota cannot cover the price


def tool_call_charge(
    *,
    call_id: str,
    user_id: int,
    api_key_id: int | None,
    tool_name: str,
    quota: int,
    username: str = "",
    token_name: str = "",
    content: str = "",
) -> ToolChargeOutcome:
    """Bill one MCP tool call to the user's quota (not the key's, as the original fork does).

    One conditional UPDATE takes the price only while the user is enabled and can cover it, so
    concurrent calls never overdraw. The charge row's unique request id makes a repeated call id
    (a client retrying the same JSON-RPC request in the same session) free: idempotent billing.
    The consume log row has type TOOL and the tool's `server.tool` name as its model.
    """
    try:
        return _tool_call_charge(call_id, user_id, api_key_id, tool_name, quota, username, token_name, content)
    except IntegrityError:
        # The same call id charged concurrently: the other one won; this one rolled back.
        return ToolChargeOutcome.ALREADY_CHARGED


def _tool_call_charge(
    call_id: str,
    user_id: int,
    api_key_id: int | None,
    tool_name: str,
    quota: int,
    username: str,
    token_name: str,
    content: str,
) -> ToolChargeOutcome:
    with transaction.atomic():
        earlier = RequestCharge.objects.filter(request_id=call_id).values_list("status", flat=True).first()
        if earlier == ChargeStatus.SETTLED:
            return ToolChargeOutcome.ALREADY_CHARGED
        taken = User.objects.filter(pk=user_id, status=UserStatus.ENABLED, quota__gte=quota).update(
            quota=F("quota") - quota, used_quota=F("used_quota") + quota, request_count=F("request_count") + 1
        )
        if not taken:
            return ToolChargeOutcome.REFUSED
        now = timezone.now()
        if earlier is not None:
            # A retry of a call that was refunded (its upstream failed): this attempt is billed.
            RequestCharge.objects.filter(request_id=call_id).update(
                status=ChargeStatus.SETTLED, held_quota=quota, quota=quota, settled_at=now
            )
            ConsumeLog.objects.filter(request_id=call_id, type=LogType.TOOL).update(
                quota=quota, status_code=200, content=content
            )
            return ToolChargeOutcome.CHARGED
        RequestCharge.objects.create(
            request_id=call_id,
            user_id=user_id,
            api_key_id=api_key_id,
            held_quota=quota,
            quota=quota,
            status=ChargeStatus.SETTLED,
            created_at=now,
            settled_at=now,
        )
        ConsumeLog.objects.create(
            created_at=now,
            type=LogType.TOOL,
            user_id=user_id,
            username=username,
            api_key_id=api_key_id,
            token_name=token_name,
            model_name=tool_name,
            upstream_model=tool_name,
            quota=quota,
            request_id=call_id,
            content=content,
        )
    return ToolChargeOutcome.CHARGED


def tool_call_refund(*, call_id: str, reason: str, elapsed_ms: int = 0) -> bool:
    """Give back a tool call's charge when the upstream MCP server could not serve it.

    Flips the charge SETTLED -> REFUNDED exactly once (a repeated refund changes nothing) and
    zeroes its log row's quota, so that the logs still sum to what users paid.
    """
    with transaction.atomic():
        charge = RequestCharge.objects.filter(request_id=call_id, status=ChargeStatus.SETTLED).first()
        if charge is None:
            return False
        if not RequestCharge.objects.filter(pk=charge.pk, status=ChargeStatus.SETTLED).update(
            status=ChargeStatus.REFUNDED, quota=0
        ):
            return False
        User.objects.filter(pk=charge.user_id).update(
            quota=F("quota") + charge.held_quota,
            used_quota=F("used_quota") - charge.held_quota,
            request_count=F("request_count") - 1,
        )
        ConsumeLog.objects.filter(request_id=call_id, type=LogType.TOOL).update(
            quota=0, status_code=502, elapsed_ms=elapsed_ms, content=reason[:2000]
        )
    return True


def tool_call_finish(*, call_id: str, elapsed_ms: int, content: str | None = None) -> None:
    """Record on a billed tool call's log row how long it took (and, when given, a new description)."""
    fields: dict[str, object] = {"elapsed_ms": elapsed_ms}
    if content is not None:
        fields["content"] = content[:2000]
    ConsumeLog.objects.filter(request_id=call_id, type=LogType.TOOL).update(**fields)
