from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import Group, Role, User
from billing.models import ChannelModelPrice
from channels_app.models import Ability, Channel, ChannelStatus
from fakeprovider.process import FakeProvider

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client(client: Client) -> Client:
    client.force_login(User.objects.create_user("root2", "pw-12345678", role=Role.ROOT))
    return client


def _raw_key(channel_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT models, {connection.ops.quote_name('key')} FROM channels WHERE id = %s", [channel_id])
        return str(cursor.fetchone()[1])


def _messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _form_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "upstream",
        "type": "1",
        "key": "sk-upstream-secret",
        "base_url": "http://127.0.0.1:9",
        "status": str(ChannelStatus.ENABLED),
        "model_names": "gpt-4o,\ngpt-4o-mini",
        "model_mapping": "{}",
        "groups": "default",
        "priority": "0",
        "weight": "1",
        "config": "{}",
        "testing_model": "",
        "prices-TOTAL_FORMS": "0",
        "prices-INITIAL_FORMS": "0",
        "prices-MIN_NUM_FORMS": "0",
        "prices-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def _channel(**fields: Any) -> Channel:
    values = {
        "name": "c",
        "type": 1,
        "key": "sk-old",
        "base_url": "http://127.0.0.1:9",
        "model_names": "m1",
        "groups": "default",
    }
    values.update(fields)
    return Channel.objects.create(**values)


def _action(client: Client, action: str, ids: list[int]) -> Any:
    url = reverse("admin:channels_app_channel_changelist")
    return client.post(url, {"action": action, "_selected_action": [str(i) for i in ids]}, follow=True)


@pytest.mark.parametrize("model", ["channel", "ability"])
def test_changelist_renders(root_client: Client, model: str) -> None:
    _channel()
    assert root_client.get(reverse(f"admin:channels_app_{model}_changelist")).status_code == 200


def test_add_pages(root_client: Client) -> None:
    assert root_client.get(reverse("admin:channels_app_channel_add")).status_code == 200
    assert root_client.get(reverse("admin:channels_app_ability_add")).status_code == 403  # abilities are derived


def test_create_channel_encrypts_key_and_builds_abilities(root_client: Client) -> None:
    Group.objects.create(name="vip")
    response = root_client.post(
        reverse("admin:channels_app_channel_add"),
        _form_data(
            groups="default, vip",
            **{
                "prices-TOTAL_FORMS": "1",
                "prices-0-model": "gpt-4o",
                "prices-0-input_price": "2.5",
                "prices-0-output_price": "10",
            },
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    channel = Channel.objects.get(name="upstream")
    assert channel.key == "sk-upstream-secret"
    raw = _raw_key(channel.pk)
    assert raw.startswith("enc:v1:") and "sk-upstream-secret" not in raw
    assert set(Ability.objects.filter(channel=channel).values_list("group", "model")) == {
        ("default", "gpt-4o"),
        ("default", "gpt-4o-mini"),
        ("vip", "gpt-4o"),
        ("vip", "gpt-4o-mini"),
    }
    assert ChannelModelPrice.objects.get(channel=channel, model="gpt-4o").output_price == 10


def test_change_form_never_renders_the_key(root_client: Client) -> None:
    channel = _channel(key="sk-very-secret-upstream")
    response = root_client.get(reverse("admin:channels_app_channel_change", args=[channel.pk]))
    assert response.status_code == 200
    assert "sk-very-secret-upstream" not in response.content.decode()


def test_blank_key_keeps_the_old_one_and_a_new_key_replaces_it(root_client: Client) -> None:
    channel = _channel(key="sk-old")
    url = reverse("admin:channels_app_channel_change", args=[channel.pk])
    response = root_client.post(url, _form_data(key="", name="renamed"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    channel.refresh_from_db()
    assert (channel.name, channel.key) == ("renamed", "sk-old")
    assert _raw_key(channel.pk).startswith("enc:v1:")
    root_client.post(url, _form_data(key="sk-new"))
    channel.refresh_from_db()
    assert channel.key == "sk-new"


def test_key_is_required_on_create(root_client: Client) -> None:
    response = root_client.post(reverse("admin:channels_app_channel_add"), _form_data(key=""))
    assert response.status_code == 200
    assert "key" in response.context["adminform"].form.errors


def test_empty_json_boxes_mean_empty_objects(root_client: Client) -> None:
    response = root_client.post(reverse("admin:channels_app_channel_add"), _form_data(model_mapping="", config=""))
    assert response.status_code == 302, response.context["adminform"].form.errors
    channel = Channel.objects.get()
    assert (channel.model_mapping, channel.config) == ({}, {})


def test_saving_does_not_overwrite_usage_counters(root_client: Client) -> None:
    channel = _channel()
    Channel.objects.filter(pk=channel.pk).update(used_quota=12345, response_time=77)
    root_client.post(reverse("admin:channels_app_channel_change", args=[channel.pk]), _form_data(key=""))
    channel.refresh_from_db()
    assert (channel.used_quota, channel.response_time) == (12345, 77)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"type": "15"}, "type"),  # Baidu: not supported
        ({"groups": "nosuchgroup"}, "groups"),
        ({"model_names": " , "}, "model_names"),
        ({"model_mapping": "[1]"}, "model_mapping"),
        ({"model_mapping": '{"a": 1}'}, "model_mapping"),
        ({"config": '"text"'}, "config"),
        ({"config": "[]"}, "config"),
        ({"base_url": "ftp://example.com"}, "base_url"),
    ],
)
def test_invalid_channels_are_refused_with_a_field_error(
    root_client: Client, overrides: dict[str, str], field: str
) -> None:
    response = root_client.post(reverse("admin:channels_app_channel_add"), _form_data(**overrides))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Channel.objects.exists()


def test_enable_and_disable_actions(root_client: Client) -> None:
    channels = [_channel(name=f"c{i}") for i in range(2)]
    ids = [c.pk for c in channels]
    _action(root_client, "disable_channels", ids)
    assert set(Channel.objects.filter(pk__in=ids).values_list("status", flat=True)) == {ChannelStatus.MANUALLY_DISABLED}
    assert not Ability.objects.filter(channel_id__in=ids, enabled=True).exists()
    _action(root_client, "enable_channels", ids)
    assert set(Channel.objects.filter(pk__in=ids).values_list("status", flat=True)) == {ChannelStatus.ENABLED}
    assert not Ability.objects.filter(channel_id__in=ids, enabled=False).exists()


def test_deleting_a_channel_takes_its_abilities_and_prices(root_client: Client) -> None:
    channel = _channel()
    ChannelModelPrice.objects.create(channel=channel, model="m1", input_price=1, output_price=2)
    url = reverse("admin:channels_app_channel_delete", args=[channel.pk])
    assert root_client.get(url).status_code == 200
    assert root_client.post(url, {"post": "yes"}).status_code == 302
    assert not Channel.objects.exists() and not Ability.objects.exists() and not ChannelModelPrice.objects.exists()


def test_group_filter_matches_whole_names(root_client: Client) -> None:
    for name in ("vip", "vip2"):
        Group.objects.create(name=name)
    _channel(name="only-vip2", groups="default,vip2")
    _channel(name="has-vip", groups="vip,default")
    content = root_client.get(reverse("admin:channels_app_channel_changelist") + "?group=vip").content.decode()
    assert "has-vip" in content and "only-vip2" not in content


def test_type_filter_offers_the_types_in_use(root_client: Client) -> None:
    _channel(name="openai-one", type=1)
    _channel(name="deepseek-one", type=36)
    url = reverse("admin:channels_app_channel_changelist")
    response = root_client.get(url, {"type": "36"})
    content = response.content.decode()
    assert "deepseek-one" in content and "openai-one" not in content
    assert "Groq" not in content  # a type nobody uses is not offered


def test_test_action_reports_each_channel(root_client: Client, fake_provider: FakeProvider) -> None:
    good = _channel(name="good", base_url=fake_provider.base_url, model_names="gpt-4o-mini")
    bad = _channel(name="bad", base_url=fake_provider.url("", "401"), model_names="gpt-4o-mini")
    response = _action(root_client, "test_channels", [good.pk, bad.pk])
    messages = _messages(response)
    assert any(m.startswith(f"{good}: OK in ") and m.endswith(" ms") for m in messages), messages
    assert any(m.startswith(f"{bad}: failed after ") for m in messages), messages
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.test_time is not None and good.last_test_error == ""
    assert bad.last_test_error
    assert "passed at" in root_client.get(reverse("admin:channels_app_channel_change", args=[good.pk])).content.decode()


@pytest.mark.django_db
def test_duplicate_action_copies_a_channel_disabled_with_its_prices(root_client, make_channel):
    from billing.models import ChannelModelPrice

    channel = make_channel("dup-model", model_mapping={"dup-model": "real"}, priority=5)
    ChannelModelPrice.objects.create(channel=channel, model="dup-model", input_price="1", output_price="2")
    response = root_client.post(
        "/admin/channels_app/channel/", {"action": "duplicate_channels", "_selected_action": [channel.pk]}, follow=True
    )
    assert response.status_code == 200
    copy = Channel.objects.exclude(pk=channel.pk).get(name__startswith=channel.name)
    assert copy.status == ChannelStatus.MANUALLY_DISABLED and copy.key == channel.key
    assert (copy.model_names, copy.model_mapping, copy.priority) == (channel.model_names, channel.model_mapping, 5)
    assert ChannelModelPrice.objects.get(channel=copy).output_price == 2
    assert not copy.abilities.filter(enabled=True).exists()


@pytest.mark.django_db
def test_refresh_balance_action_reports_unsupported_types(root_client, make_channel):
    channel = make_channel("bal-model", type=14)  # Anthropic has no balance endpoint
    response = root_client.post(
        "/admin/channels_app/channel/", {"action": "refresh_balances", "_selected_action": [channel.pk]}, follow=True
    )
    assert response.status_code == 200 and b"no balance endpoint" in response.content
