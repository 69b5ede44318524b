"""Writes on billing outside the relay path (through the ORM)."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import ApiKey, User

from .models import ChargeStatus, ConsumeLog, LogType, RequestCharge

STALE_AFTER = timedelta(hours=1)


def release_stale_holds(*, older_than: timedelta = STALE_AFTER) -> int:
    """Charge the held estimate of requests whose worker died before settling them.

    A request older than an hour cannot still be running (RELAY_TIMEOUT or the stream idle
    timeout ends it first), so its hold is final. It is charged, not refunded, because the
    upstream may have served it: the conservative choice, as the original's fork makes.
    """
    done = 0
    cutoff = timezone.now() - older_than
    for charge_id in RequestCharge.objects.filter(status=ChargeStatus.HELD, created_at__lt=cutoff).values_list("pk", flat=True):
        with transaction.atomic():
            claimed = RequestCharge.objects.filter(pk=charge_id, status=ChargeStatus.HELD).update(
                status=ChargeStatus.SETTLED, settled_at=timezone.now(), quota=F("held_quota")
            )
            if not claimed:
                continue
            charge = RequestCharge.objects.get(pk=charge_id)
            User.objects.filter(pk=charge.user_id).update(
                used_quota=F("used_quota") + charge.quota, request_count=F("request_count") + 1
            )
            if charge.api_key_id:
                ApiKey.objects.filter(pk=charge.api_key_id).update(used_quota=F("used_quota") + charge.quota)
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
