"""Writes on channels: the abilities projection, status changes."""

from __future__ import annotations

from django.db import transaction

from .models import Ability, Channel, ChannelStatus


@transaction.atomic
def abilities_rebuild(*, channel: Channel) -> None:
    """Make the channel's abilities exactly its groups x served models (keeps suspensions)."""
    wanted = {(g, m) for g in channel.group_list for m in channel.served_models()}
    enabled = channel.status == ChannelStatus.ENABLED
    existing = {(a.group, a.model): a for a in Ability.objects.filter(channel=channel)}
    stale = [a.pk for key, a in existing.items() if key not in wanted]
    if stale:
        Ability.objects.filter(pk__in=stale).delete()
    Ability.objects.bulk_create(
        [
            Ability(group=g, model=m, channel=channel, enabled=enabled, priority=channel.priority, weight=channel.weight)
            for (g, m) in wanted - existing.keys()
        ]
    )
    Ability.objects.filter(channel=channel).update(enabled=enabled, priority=channel.priority, weight=channel.weight)


def channel_set_status(*, channel: Channel, status: ChannelStatus) -> Channel:
    channel.status = status
    channel.save(update_fields=["status"])
    return channel


@transaction.atomic
def channel_duplicate(*, channel: Channel) -> Channel:
    """A copy of `channel` (key, models, groups, mapping, config, prices), created disabled so it
    takes no traffic until the operator has reviewed and enabled it."""
    from billing.models import ChannelModelPrice

    copy = Channel.objects.create(
        type=channel.type,
        name=f"{channel.name} (copy)"[:64],
        key=channel.key,
        base_url=channel.base_url,
        model_names=channel.model_names,
        groups=channel.groups,
        model_mapping=dict(channel.model_mapping or {}),
        priority=channel.priority,
        weight=channel.weight,
        status=ChannelStatus.MANUALLY_DISABLED,
        config=dict(channel.config or {}),
        testing_model=channel.testing_model,
    )
    for price in ChannelModelPrice.objects.filter(channel=channel):
        price.pk, price.channel = None, copy
        price.save()
    return copy
