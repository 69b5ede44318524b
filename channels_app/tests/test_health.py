"""Auto-disable and auto-enable rules, and the operator's e-mail."""

from __future__ import annotations

import pytest
from django.core import mail

from accounts.models import Role
from channels_app.health import (
    channel_auto_disable,
    channel_auto_disable_by_id,
    channel_auto_enable,
    should_auto_disable,
)
from channels_app.models import Ability, ChannelStatus
from channels_app.testing import channel_test
from relay.models import CacheGeneration, Option


@pytest.mark.parametrize(
    "status, code, kind, message, expected",
    [
        (401, None, None, "Incorrect API key provided", True),
        (403, "invalid_api_key", None, "forbidden", True),
        (429, "insufficient_quota", "insufficient_quota", "You exceeded your current quota", True),
        (400, None, None, "Your credit balance is too low to access the Anthropic API", True),
        (403, None, "PERMISSION_DENIED", "API key not valid. Please pass a valid API key.", True),
        (429, "rate_limit_exceeded", "requests", "Rate limit reached", False),
        (500, None, "server_error", "internal error", False),
        (400, None, "invalid_request_error", "max_tokens is too large", False),
    ],
)
def test_which_upstream_errors_disable_a_channel(status, code, kind, message, expected):
    assert should_auto_disable(status=status, code=code, kind=kind, message=message) is expected


@pytest.fixture
def operator(make_user, settings):
    settings.OPERATOR_EMAILS = ["oncall@example.com"]
    root = make_user(role=Role.ROOT)
    root.email = "root@example.com"
    root.save()
    return root


@pytest.mark.django_db(transaction=True)
def test_disable_and_enable_notify_the_operator_and_reload_routing(make_channel, operator):
    channel = make_channel("m-health")
    before = CacheGeneration.objects.get(name="config").version
    assert channel_auto_disable(channel=channel, reason="upstream answered 401: bad key")
    assert not channel_auto_disable(channel=channel, reason="again")  # already disabled: nothing twice
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.AUTO_DISABLED and "bad key" in channel.last_test_error
    assert not Ability.objects.get(channel=channel).enabled
    assert CacheGeneration.objects.get(name="config").version > before
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == f"Channel #{channel.pk} {channel.name} was disabled"
    assert message.to == ["oncall@example.com", "root@example.com"] and "bad key" in message.body
    assert channel_auto_enable(channel=channel, reason="test passed")
    assert Ability.objects.get(channel=channel).enabled
    assert mail.outbox[-1].subject.endswith("was enabled again")


@pytest.mark.django_db(transaction=True)
def test_an_operators_disable_is_never_undone(make_channel, operator):
    channel = make_channel("m-health", status=ChannelStatus.MANUALLY_DISABLED)
    assert not channel_auto_enable(channel=channel, reason="test passed")
    assert not channel_auto_disable_by_id(channel_id=channel.pk, reason="401")
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.MANUALLY_DISABLED and not mail.outbox


@pytest.mark.django_db(transaction=True)
def test_a_channel_slower_than_the_threshold_is_disabled(make_channel, operator):
    Option.objects.create(key="AutomaticDisableChannelEnabled", value="true")
    Option.objects.create(key="ChannelDisableThreshold", value="0.05")  # seconds
    channel = make_channel("m-slow", scenario="ttfb=200")
    result = channel_test(channel=channel)
    assert not result.success and result.too_slow and "too slow" in result.message
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.AUTO_DISABLED and channel.response_time >= 200
    assert "was disabled" in mail.outbox[0].subject


@pytest.mark.django_db(transaction=True)
def test_a_slow_channel_is_only_reported_without_the_option(make_channel):
    Option.objects.create(key="ChannelDisableThreshold", value="0.05")
    channel = make_channel("m-slow", scenario="ttfb=200")
    assert not channel_test(channel=channel).success
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.ENABLED and "too slow" in channel.last_test_error
