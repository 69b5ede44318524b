"""Management API for channels: admin only, key write-only and encrypted, validation in the envelope."""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Group, Role, User
from accounts.services import access_token_regenerate
from channels_app.models import Ability, Channel, ChannelStatus
from channels_app.types import CHANNEL_TYPES, UNSUPPORTED

pytestmark = pytest.mark.django_db

SECRET = "sk-upstream-secret-0123456789"
UNSUPPORTED_TYPE = next(
    tid for tid, info in CHANNEL_TYPES.items() if info.protocol == UNSUPPORTED and info.default_base_url
)


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=access_token_regenerate(user=user))
    return client


@pytest.fixture
def admin() -> APIClient:
    return client_for(User.objects.create_user("ada", "pw-12345678", role=Role.ADMIN))


@pytest.fixture
def user() -> APIClient:
    return client_for(User.objects.create_user("alice", "pw-12345678"))


def stored_key(channel_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {connection.ops.quote_name('key')} FROM channels WHERE id = %s", [channel_id])
        return cursor.fetchone()[0]


def create(admin: APIClient, **fields: object) -> dict:
    body = {
        "type": 1,
        "name": "openai main",
        "key": SECRET,
        "models": "gpt-4o,gpt-4o-mini",
        "group": "default",
        **fields,
    }
    response = admin.post("/api/channel/", body, format="json")
    assert response.status_code == 200 and response.json()["success"] is True, response.json()
    return response.json()["data"]


def test_plain_user_gets_403_and_anonymous_401(user: APIClient) -> None:
    Channel.objects.create(type=1, name="c", key="k", model_names="m")
    for method, path in (
        ("get", "/api/channel/"),
        ("post", "/api/channel/"),
        ("get", "/api/channel/search"),
        ("delete", "/api/channel/1"),
    ):
        response = getattr(user, method)(path)
        assert response.status_code == 403, path
        assert response.json()["success"] is False
        assert getattr(APIClient(), method)(path).status_code == 401
    assert Channel.objects.count() == 1


def test_crud_round_trip_never_returns_the_key(admin: APIClient) -> None:
    data = create(admin, model_mapping='{"gpt-4o": "gpt-4o-2024-08-06"}', priority=5, weight=3)
    channel = Channel.objects.get(pk=data["id"])
    assert channel.key == SECRET
    assert stored_key(channel.pk).startswith("enc:v1:") and SECRET not in stored_key(channel.pk)
    assert data["models"] == "gpt-4o,gpt-4o-mini" and data["group"] == "default"
    assert data["model_mapping"] == '{"gpt-4o": "gpt-4o-2024-08-06"}'
    assert data["priority"] == 5 and data["weight"] == 3 and data["status"] == ChannelStatus.ENABLED
    assert set(Ability.objects.filter(channel=channel).values_list("model", flat=True)) == {"gpt-4o", "gpt-4o-mini"}

    responses = [
        admin.get("/api/channel/"),
        admin.get(f"/api/channel/{channel.pk}"),
        admin.get("/api/channel/search", {"keyword": "main"}),
    ]
    for response in responses:
        assert response.json()["success"] is True
        assert SECRET not in response.content.decode() and '"key"' not in response.content.decode()
    assert responses[0].json()["data"][0]["id"] == channel.pk
    assert [c["id"] for c in responses[2].json()["data"]] == [channel.pk]

    # An empty key on update keeps the stored one; a model_mapping object is accepted too.
    response = admin.put(
        "/api/channel/",
        {"id": channel.pk, "key": "", "name": "renamed", "model_mapping": {"o": "gpt-4o"}},
        format="json",
    )
    assert response.json()["success"] is True, response.json()
    channel.refresh_from_db()
    assert channel.key == SECRET and channel.name == "renamed" and channel.model_mapping == {"o": "gpt-4o"}
    assert channel.priority == 5  # untouched fields stay
    assert "o" in set(Ability.objects.filter(channel=channel).values_list("model", flat=True))

    admin.put("/api/channel/", {"id": channel.pk, "key": "sk-new"}, format="json")
    channel.refresh_from_db()
    assert channel.key == "sk-new"

    assert admin.delete(f"/api/channel/{channel.pk}").json()["success"] is True
    assert not Channel.objects.exists() and not Ability.objects.exists()
    assert admin.get(f"/api/channel/{channel.pk}").status_code == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"models": ""}, "models"),
        ({"group": "nosuchgroup"}, "group"),
        ({"type": UNSUPPORTED_TYPE}, "type"),  # a type whose protocol is not implemented yet
        ({"type": 999}, "type"),
        ({"base_url": "ftp://example.com"}, "base_url"),
        ({"type": 8}, "base_url"),  # Custom needs a base URL
        ({"model_mapping": "{not json"}, "model_mapping"),
        ({"model_mapping": "[1, 2]"}, "model_mapping"),
        ({"model_mapping": {"a": 5}}, "model_mapping"),
        ({"config": "3"}, "config"),
        ({"key": ""}, "key"),
        ({"name": ""}, "name"),
    ],
)
def test_validation_errors_change_nothing(admin: APIClient, fields: dict, field: str) -> None:
    body = {"type": 1, "name": "c", "key": SECRET, "models": "gpt-4o", "group": "default", **fields}
    response = admin.post("/api/channel/", body, format="json")
    assert response.status_code == 200
    assert response.json()["success"] is False
    assert field in response.json()["message"], response.json()
    assert not Channel.objects.exists() and not Ability.objects.exists()


def test_invalid_update_changes_nothing(admin: APIClient) -> None:
    data = create(admin)
    response = admin.put("/api/channel/", {"id": data["id"], "name": "new", "group": "ghosts"}, format="json")
    assert response.json()["success"] is False and "group" in response.json()["message"]
    channel = Channel.objects.get(pk=data["id"])
    assert channel.name == "openai main" and channel.groups == "default"


def test_batch_create_one_channel_per_key_line(admin: APIClient) -> None:
    Group.objects.create(name="vip")
    response = admin.post(
        "/api/channel/",
        {"type": 1, "name": "pool", "key": "sk-one\nsk-two\n", "models": "m", "group": "default,vip"},
        format="json",
    )
    assert response.json()["success"] is True
    assert sorted(Channel.objects.values_list("name", flat=True)) == ["pool", "pool"]
    assert sorted(c.key for c in Channel.objects.all()) == ["sk-one", "sk-two"]
    assert Ability.objects.filter(group="vip").count() == 2


def test_delete_disabled(admin: APIClient) -> None:
    keep = create(admin)
    gone = create(admin, status=ChannelStatus.MANUALLY_DISABLED)
    response = admin.delete("/api/channel/disabled")
    assert response.json()["data"] == 1
    assert list(Channel.objects.values_list("pk", flat=True)) == [keep["id"]]
    assert gone["id"] != keep["id"]


def test_channel_test_route(admin: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from channels_app import testing

    calls: list[tuple[int, str | None]] = []

    def fake_test(*, channel: Channel, model: str | None = None) -> testing.ChannelTestResult:
        calls.append((channel.pk, model))
        return testing.ChannelTestResult(success=True, response_ms=1234, message="")

    monkeypatch.setattr(testing, "channel_test", fake_test)
    data = create(admin)
    body = admin.get(f"/api/channel/test/{data['id']}", {"model": "gpt-4o-mini"}).json()
    assert body["success"] is True and body["time"] == 1.234 and body["model"] == "gpt-4o-mini"
    assert calls == [(data["id"], "gpt-4o-mini")]
    assert admin.get("/api/channel/test/999999").status_code == 404
