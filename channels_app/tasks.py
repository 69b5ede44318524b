"""Celery tasks for channels: periodic tests, balance refresh, operator notices.

Each task takes ids, can run twice without harm (a test or a balance read repeats; a notice
is an e-mail), and declares its retries and time limits. Fan-out tasks enqueue one task per
channel with `expires`, so a slow round is dropped rather than piling up behind the next.
"""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from .balance import BalanceError, BalanceUnsupported, balance_supported, channel_refresh_balance
from .models import Channel, ChannelStatus
from .notify import channel_status_notify
from .testing import channel_test

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(OperationalError,), retry_backoff=True, retry_jitter=True, max_retries=3,
    soft_time_limit=300, time_limit=360, acks_late=True,
)
def test_channel(channel_id: int) -> bool:
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return False
    return channel_test(channel=channel).success


@shared_task(soft_time_limit=120, time_limit=180)
def test_all_channels() -> int:
    """Every CHANNEL_TEST_FREQUENCY seconds: test enabled and auto-disabled channels."""
    ids = list(
        Channel.objects.filter(status__in=[ChannelStatus.ENABLED, ChannelStatus.AUTO_DISABLED]).values_list("pk", flat=True)
    )
    expires = max(float(settings.CHANNEL_TEST_FREQUENCY or 3600), 30.0)
    for channel_id in ids:
        test_channel.apply_async((channel_id,), expires=expires)
    return len(ids)


@shared_task(
    autoretry_for=(BalanceError, OperationalError), retry_backoff=60, retry_jitter=True, max_retries=2,
    soft_time_limit=60, time_limit=90,
)
def refresh_channel_balance(channel_id: int) -> float | None:
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return None
    try:
        return channel_refresh_balance(channel=channel)
    except BalanceUnsupported:
        return None


@shared_task(soft_time_limit=60, time_limit=90)
def refresh_all_balances() -> int:
    """Enabled channels of the types whose providers expose a balance."""
    channels = Channel.objects.filter(status=ChannelStatus.ENABLED).only("id", "type")
    ids = [channel.pk for channel in channels if balance_supported(channel)]
    for channel_id in ids:
        refresh_channel_balance.apply_async((channel_id,), expires=3600)
    return len(ids)


@shared_task(
    autoretry_for=(smtplib.SMTPException, OSError), retry_backoff=30, retry_jitter=True, max_retries=5,
    soft_time_limit=60, time_limit=90,
)
def notify_channel_status(channel_id: int, status: int, reason: str) -> int:
    return channel_status_notify(channel_id=channel_id, status=status, reason=reason)
