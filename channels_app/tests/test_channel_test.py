"""The channel test speaks each channel's own protocol (through the relay's adaptors)."""

from __future__ import annotations

import pytest

from channels_app.models import ChannelStatus
from channels_app.testing import channel_test
from relay.models import Option


@pytest.mark.django_db
@pytest.mark.parametrize("channel_type", [1, 14, 24, 3])  # OpenAI, Anthropic, Gemini, Azure
def test_a_working_channel_passes_and_records_its_time(make_channel, channel_type):
    channel = make_channel("some-model", type=channel_type)
    result = channel_test(channel=channel)
    assert result.success, result.message
    channel.refresh_from_db()
    assert channel.test_time is not None and channel.last_test_error == ""


@pytest.mark.django_db
def test_auth_failure_auto_disables_and_a_later_pass_re_enables(make_channel):
    Option.objects.create(key="AutomaticDisableChannelEnabled", value="true")
    Option.objects.create(key="AutomaticEnableChannelEnabled", value="true")
    channel = make_channel("some-model", scenario="401")
    result = channel_test(channel=channel)
    assert not result.success and result.auth_failure
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.AUTO_DISABLED and "Incorrect API key" in channel.last_test_error
    channel.base_url = channel.base_url.replace("/s/401", "")
    channel.save()
    assert channel_test(channel=channel).success
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.ENABLED


@pytest.mark.django_db
def test_manually_disabled_channels_are_never_re_enabled(make_channel):
    Option.objects.create(key="AutomaticEnableChannelEnabled", value="true")
    channel = make_channel("some-model", status=ChannelStatus.MANUALLY_DISABLED)
    assert channel_test(channel=channel).success
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.MANUALLY_DISABLED
