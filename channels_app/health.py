"""Channel health: when an upstream error means the channel itself is broken, and what follows.

Auto-disable (status 3, AutomaticDisableChannelEnabled) when the upstream refuses the channel's
key or its billing, as the original decides (controller/relay.go shouldDisableChannel), or when
a channel test is slower than ChannelDisableThreshold. Auto-enable (AutomaticEnableChannelEnabled)
only ever undoes an automatic disable, never an operator's. Each change is e-mailed to the
operator (channels_app.notify) once the transaction commits.
"""

from __future__ import annotations

import logging

from django.db import close_old_connections, connection, transaction

from .models import Channel, ChannelStatus
from .services import channel_set_status

logger = logging.getLogger(__name__)

AUTH_STATUSES = {401}
AUTH_CODES = {"invalid_api_key", "account_deactivated", "insufficient_quota"}
AUTH_TYPES = {"insufficient_quota", "authentication_error", "permission_error", "forbidden", "PERMISSION_DENIED"}
# Lower-cased substrings of upstream messages that mean "this key or account cannot be used".
AUTH_MESSAGES = (
    "your access was terminated",
    "violation of our policies",
    "your credit balance is too low",
    "organization has been disabled",
    "credit",
    "balance",
    "permission denied",
    "organization has been restricted",
    "api key not valid",
    "api key expired",
    "insufficient balance",
    "已欠费",
)


def should_auto_disable(*, status: int | None, code: str | None, kind: str | None, message: str) -> bool:
    """Whether an upstream error says the channel's key or billing is unusable (not a blip)."""
    if status in AUTH_STATUSES:
        return True
    if code in AUTH_CODES or kind in AUTH_TYPES:
        return True
    lowered = message.lower()
    return any(text in lowered for text in AUTH_MESSAGES)


def _notify_on_commit(channel: Channel, status: int, reason: str) -> None:
    from .tasks import notify_channel_status

    channel_id = channel.pk
    transaction.on_commit(lambda: notify_channel_status.delay(channel_id, status, reason[:1000]))


def channel_auto_disable(*, channel: Channel, reason: str) -> bool:
    """ENABLED -> AUTO_DISABLED (abilities follow, every worker reloads); False if it was not enabled."""
    with transaction.atomic():
        locked = Channel.objects.select_for_update().filter(pk=channel.pk).first()
        if locked is None or locked.status != ChannelStatus.ENABLED:
            return False
        Channel.objects.filter(pk=locked.pk).update(last_test_error=reason[:1000])
        channel_set_status(channel=locked, status=ChannelStatus.AUTO_DISABLED)
        _notify_on_commit(locked, ChannelStatus.AUTO_DISABLED, reason)
    channel.status = ChannelStatus.AUTO_DISABLED
    logger.warning("channel %s (%s) auto-disabled: %s", channel.pk, channel.name, reason)
    return True


def channel_auto_enable(*, channel: Channel, reason: str) -> bool:
    """AUTO_DISABLED -> ENABLED; never touches a channel an operator disabled."""
    with transaction.atomic():
        locked = Channel.objects.select_for_update().filter(pk=channel.pk).first()
        if locked is None or locked.status != ChannelStatus.AUTO_DISABLED:
            return False
        channel_set_status(channel=locked, status=ChannelStatus.ENABLED)
        _notify_on_commit(locked, ChannelStatus.ENABLED, reason)
    channel.status = ChannelStatus.ENABLED
    logger.info("channel %s (%s) re-enabled: %s", channel.pk, channel.name, reason)
    return True


def channel_auto_disable_by_id(*, channel_id: int, reason: str) -> bool:
    """For the relay, which calls it in a worker thread: owns its database connection."""
    close_old_connections()
    try:
        channel = Channel.objects.filter(pk=channel_id).first()
        return channel is not None and channel_auto_disable(channel=channel, reason=reason)
    finally:
        connection.close()
