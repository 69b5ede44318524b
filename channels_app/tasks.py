from __future__ import annotations

from celery import shared_task

from .models import Channel, ChannelStatus
from .testing import channel_test


@shared_task(autoretry_for=(ConnectionError,), retry_backoff=True, retry_jitter=True, max_retries=3, time_limit=600)
def test_channel(channel_id: int) -> bool:
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return False
    return channel_test(channel=channel).success


@shared_task(time_limit=3600)
def test_all_channels() -> int:
    """Every CHANNEL_TEST_FREQUENCY seconds: test enabled and auto-disabled channels."""
    ids = list(
        Channel.objects.filter(status__in=[ChannelStatus.ENABLED, ChannelStatus.AUTO_DISABLED]).values_list("pk", flat=True)
    )
    for channel_id in ids:
        test_channel.delay(channel_id)
    return len(ids)
