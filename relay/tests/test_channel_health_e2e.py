"""What failed upstream attempts do to their channel, seen on the live gateway.

- 5xx: the ability is suspended for CHANNEL_SUSPEND_SECONDS_FOR_5XX (default 30 s), recorded in
  `abilities.suspend_until`, so the next requests go elsewhere without trying it first.
- A refused upstream key (401) auto-disables the channel when AutomaticDisableChannelEnabled.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.models import Ability, ChannelStatus
from relay.models import Option

from .helpers import get, post, wait_for

SETTLE = 1.0  # seconds: more than CACHE_CHANGE_POLL_SECONDS (0.2) plus a reload

pytestmark = pytest.mark.django_db(transaction=True)


def chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def upstream_calls(fake_provider, model: str, scenario: str) -> int:  # type: ignore[no-untyped-def]
    _, _, records = get(fake_provider.base_url + "/_requests")
    return sum(
        1
        for record in records
        if record["path"].startswith(f"/s/{scenario}/") and isinstance(record["body"], dict) and record["body"].get("model") == model
    )


@pytest.fixture
def auto_disable_on() -> Iterator[None]:
    Option.objects.update_or_create(key="AutomaticDisableChannelEnabled", defaults={"value": "true"})
    yield
    # Deleted through the ORM (not the test's flush) so that the gateways' caches learn of it.
    Option.objects.filter(key="AutomaticDisableChannelEnabled").delete()


def test_a_5xx_suspends_the_channel_for_that_model(live_gateway, fake_provider, make_user, make_key, make_channel, unique_model):
    failing = make_channel(unique_model, scenario="500", priority=10)
    make_channel(unique_model, priority=0)
    time.sleep(SETTLE)  # the gateway picks up both channels within its poll interval
    _, raw = make_key(make_user())
    url, auth = live_gateway.url + "/v1/chat/completions", {"Authorization": f"Bearer {raw}"}
    assert post(url, chat(unique_model), auth)[0] == 200  # 500 on the first channel, served by the second
    ability = Ability.objects.get(channel=failing, model=unique_model)
    assert ability.suspend_until is not None
    assert timezone.now() + timedelta(seconds=20) < ability.suspend_until <= timezone.now() + timedelta(seconds=31)
    for _ in range(3):
        assert post(url, chat(unique_model), auth)[0] == 200
    assert upstream_calls(fake_provider, unique_model, "500") == 1


def test_an_upstream_401_auto_disables_the_channel(
    live_gateway, auto_disable_on, make_user, make_key, make_channel, unique_model
):
    refused = make_channel(unique_model, scenario="401", priority=10)
    make_channel(unique_model, priority=0)
    time.sleep(SETTLE)  # the gateway picks up both channels within its poll interval
    _, raw = make_key(make_user())
    url, auth = live_gateway.url + "/v1/chat/completions", {"Authorization": f"Bearer {raw}"}

    def served() -> bool:
        # The option reaches the gateway within its poll interval; until then a 401 is only retried.
        assert post(url, chat(unique_model), auth)[0] == 200
        refused.refresh_from_db()
        return refused.status == ChannelStatus.AUTO_DISABLED

    wait_for(served, timeout=10, interval=0.3)
    assert "401" in refused.last_test_error
    assert not Ability.objects.get(channel=refused, model=unique_model).enabled


def test_without_the_option_a_401_only_moves_on(live_gateway, make_user, make_key, make_channel, unique_model):
    refused = make_channel(unique_model, scenario="401", priority=10)
    make_channel(unique_model, priority=0)
    time.sleep(SETTLE)  # the gateway picks up both channels within its poll interval
    _, raw = make_key(make_user())
    assert post(live_gateway.url + "/v1/chat/completions", chat(unique_model), {"Authorization": f"Bearer {raw}"})[0] == 200
    refused.refresh_from_db()
    assert refused.status == ChannelStatus.ENABLED
