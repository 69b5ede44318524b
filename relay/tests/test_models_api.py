"""`GET /v1/models[/<model>]` and the JSON 404 for every other `/v1` path Django sees."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Group, KeyStatus, User
from accounts.services import api_key_create
from channels_app.models import Channel, ChannelStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue() -> None:
    """default group: a, b (enabled), e (mapping alias); c only on a disabled channel; d only for vip."""
    Group.objects.get_or_create(name="default")
    Group.objects.create(name="vip")
    Channel.objects.create(type=1, name="main", key="k1", model_names="a,b", model_mapping={"e": "b"}, groups="default")
    Channel.objects.create(type=36, name="second", key="k2", model_names="b", groups="default,vip", priority=9)
    Channel.objects.create(
        type=1, name="off", key="k3", model_names="c", groups="default", status=ChannelStatus.MANUALLY_DISABLED
    )
    Channel.objects.create(type=1, name="vip only", key="k4", model_names="d", groups="vip")


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", "pw-12345678")


def key_client(user: User, allowed_models: str = "", **headers: str) -> APIClient:
    _, raw = api_key_create(user=user, name="k", unlimited_quota=True, allowed_models=allowed_models)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}", **headers)
    return client


def listed(client: APIClient) -> list[str]:
    response = client.get("/v1/models")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "list"
    return sorted(item["id"] for item in body["data"])


def assert_openai_error(response, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if code is not None:
        assert error["code"] == code
    return error


def test_lists_the_groups_enabled_models(catalogue: None, alice: User) -> None:
    client = key_client(alice)
    assert listed(client) == ["a", "b", "e"]
    item = next(i for i in client.get("/v1/models").json()["data"] if i["id"] == "b")
    assert item["object"] == "model" and isinstance(item["created"], int)
    assert item["owned_by"] == "deepseek"  # the highest-priority channel serving it


def test_allow_list_narrows_the_list(catalogue: None, alice: User) -> None:
    assert listed(key_client(alice, allowed_models="a,e,c,zzz")) == ["a", "e"]


def test_other_group_sees_its_own_models(catalogue: None, alice: User) -> None:
    alice.group = Group.objects.get(name="vip")
    alice.save()
    assert listed(key_client(alice)) == ["b", "d"]


def test_retrieve_one_model(catalogue: None, alice: User) -> None:
    client = key_client(alice, allowed_models="a,b")
    body = client.get("/v1/models/a").json()
    assert body["id"] == "a" and body["object"] == "model"
    for hidden in ("c", "d", "e", "nope"):  # disabled, other group, not allowed, unknown
        assert_openai_error(client.get(f"/v1/models/{hidden}"), 404, "model_not_found")


def test_model_names_with_slashes(alice: User) -> None:
    Channel.objects.create(type=1, name="hf", key="k", model_names="deepseek-ai/DeepSeek-V3", groups="default")
    assert key_client(alice).get("/v1/models/deepseek-ai/DeepSeek-V3").json()["id"] == "deepseek-ai/DeepSeek-V3"


def test_anthropic_shape_with_anthropic_version(catalogue: None, alice: User) -> None:
    client = key_client(alice, HTTP_ANTHROPIC_VERSION="2023-06-01")
    body = client.get("/v1/models").json()
    assert [m["id"] for m in body["data"]] == ["a", "b", "e"]
    assert body["data"][0]["type"] == "model" and body["has_more"] is False and body["first_id"] == "a"
    error = client.get("/v1/models/zzz").json()
    assert error["type"] == "error" and error["error"]["type"] == "not_found_error"


def test_x_api_key_header_works(catalogue: None, alice: User) -> None:
    _, raw = api_key_create(user=alice, name="k", unlimited_quota=True)
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    assert client.get("/v1/models").status_code == 200


def test_no_key_is_401_openai_shaped(catalogue: None) -> None:
    response = APIClient().get("/v1/models")
    assert_openai_error(response, 401)
    assert response["WWW-Authenticate"] == "Bearer"
    assert response["X-Oneapi-Request-Id"]


def test_wrong_key_is_401_openai_shaped(catalogue: None) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer sk-" + "x" * 48)
    assert_openai_error(client.get("/v1/models"), 401, "invalid_api_key")


def test_disabled_key_is_refused(alice: User) -> None:
    key, raw = api_key_create(user=alice, name="k", unlimited_quota=True)
    key.status = KeyStatus.DISABLED
    key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert_openai_error(client.get("/v1/models"), 401, "api_key_disabled")


def test_management_access_token_is_not_a_relay_key(alice: User) -> None:
    from accounts.services import access_token_regenerate

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=access_token_regenerate(user=alice))
    assert_openai_error(client.get("/v1/models"), 401)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/nope"),
        ("post", "/v1/files"),
        ("delete", "/v1/assistants/x"),
        ("put", "/v1"),
        ("post", "/v1/chat/completions"),
    ],
)
def test_unknown_v1_routes_are_json_404(method: str, path: str) -> None:
    response = getattr(APIClient(), method)(path, {"model": "x"}, format="json")
    error = assert_openai_error(response, 404, "unknown_url")
    assert error["type"] == "invalid_request_error"
    assert "<html" not in response.content.decode().lower()


def test_unsupported_method_on_models_is_json(alice: User) -> None:
    response = key_client(alice).delete("/v1/models/a")
    assert_openai_error(response, 405)


def test_unexpected_error_is_openai_shaped_500(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    from relay import api

    def broken(entry: object) -> list:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api, "models_for_key", broken)
    response = key_client(alice).get("/v1/models")
    error = assert_openai_error(response, 500)
    assert error["type"] == "server_error" and "secret internals" not in error["message"]
