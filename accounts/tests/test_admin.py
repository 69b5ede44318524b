from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from accounts.keys import digest
from accounts.models import ApiKey, Group, KeyStatus, Role, User, UserStatus
from accounts.services import api_key_create
from billing.models import ConsumeLog, LogType

pytestmark = pytest.mark.django_db


@pytest.fixture
def root() -> User:
    return User.objects.create_user("root2", "pw-12345678", role=Role.ROOT)


@pytest.fixture
def root_client(client: Client, root: User) -> Client:
    client.force_login(root)
    return client


def _messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _action(client: Client, model: str, action: str, ids: list[int]) -> Any:
    url = reverse(f"admin:accounts_{model}_changelist")
    return client.post(url, {"action": action, "_selected_action": [str(i) for i in ids]}, follow=True)


@pytest.mark.parametrize("model", ["user", "group", "apikey"])
def test_changelist_and_add_pages_render(root_client: Client, root: User, model: str) -> None:
    api_key_create(user=root, name="listed")
    assert root_client.get(reverse(f"admin:accounts_{model}_changelist")).status_code == 200
    assert root_client.get(reverse(f"admin:accounts_{model}_add")).status_code == 200


def test_site_header(root_client: Client) -> None:
    response = root_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert b"One API admin" in response.content


@pytest.mark.parametrize("role", [Role.GUEST, Role.USER])
def test_non_admins_are_kept_out(client: Client, role: int) -> None:
    client.force_login(User.objects.create_user("plain", "pw-12345678", role=role))
    response = client.get("/admin/")
    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert "/admin/login/" in response["Location"]
    assert client.get(reverse("admin:accounts_user_changelist")).status_code in (302, 403)


def test_admin_role_may_enter(client: Client) -> None:
    client.force_login(User.objects.create_user("adm", "pw-12345678", role=Role.ADMIN))
    assert client.get("/admin/").status_code == 200


# ---------------------------------------------------------------------------------------- users


def test_create_user_with_password_and_usd_quota(root_client: Client) -> None:
    vip = Group.objects.create(name="vip", ratio="0.5")
    response = root_client.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "alice",
            "password1": "correct-horse-battery",
            "password2": "correct-horse-battery",
            "group": vip.pk,
            "role": Role.USER,
            "quota": "1000",
            "top_up_usd": "2.5",
            "email": "",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    alice = User.objects.get(username="alice")
    assert alice.check_password("correct-horse-battery")
    assert alice.group == vip
    assert alice.quota == 1000 + 1_250_000


def test_create_user_passwords_must_match(root_client: Client) -> None:
    response = root_client.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "bob",
            "password1": "correct-horse-1",
            "password2": "correct-horse-2",
            "role": Role.USER,
            "quota": "0",
        },
    )
    assert response.status_code == 200
    assert not User.objects.filter(username="bob").exists()


def test_user_list_shows_usd(root_client: Client) -> None:
    User.objects.create_user("carol", "pw-12345678", quota=1_500_000, used_quota=250_000)
    content = root_client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert "$3.00" in content
    assert "$0.50" in content


def test_change_form_hides_the_password_hash(root_client: Client) -> None:
    user = User.objects.create_user("dave", "pw-12345678")
    response = root_client.get(reverse("admin:accounts_user_change", args=[user.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert user.password not in content
    assert user.password.split("$")[0] + "$" not in content  # not even the algorithm summary
    password_url = reverse("admin:auth_user_password_change", args=[user.pk])
    assert password_url in content
    assert root_client.get(password_url).status_code == 200


def _change_data(user: User, **overrides: Any) -> dict[str, Any]:
    data = {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "group": user.group_id,
        "role": user.role,
        "status": user.status,
        "aff_code": user.aff_code or "",
        "inviter": "",
        "github_id": "",
        "oidc_id": "",
        "top_up_usd": "",
    }
    data.update(overrides)
    return data


def test_top_up_in_usd_adds_to_the_current_quota(root_client: Client, root: User) -> None:
    user = User.objects.create_user("erin", "pw-12345678", quota=100)
    url = reverse("admin:accounts_user_change", args=[user.pk])
    root_client.get(url)
    # The relay spends while the operator looks at the form: the top-up must not undo that.
    User.objects.filter(pk=user.pk).update(quota=40, used_quota=60, request_count=3)
    response = root_client.post(url, _change_data(user, top_up_usd="2", quota="999999"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert (user.quota, user.used_quota, user.request_count) == (40 + 1_000_000, 60, 3)
    log = ConsumeLog.objects.get(user=user, type=LogType.MANAGE)
    assert "root2" in log.content and "$2.00" in log.content
    assert log.quota == 0  # a manage note, not spending


def test_top_up_may_not_go_negative(root_client: Client) -> None:
    user = User.objects.create_user("frank", "pw-12345678", quota=100)
    response = root_client.post(
        reverse("admin:accounts_user_change", args=[user.pk]), _change_data(user, top_up_usd="-1")
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.quota == 100


def test_enable_and_disable_users(root_client: Client, root: User) -> None:
    users = [User.objects.create_user(f"u{i}", "pw-12345678") for i in range(2)]
    ids = [u.pk for u in users] + [root.pk]
    _action(root_client, "user", "disable_users", ids)
    assert set(User.objects.filter(pk__in=ids).values_list("username", "status")) == {
        ("u0", UserStatus.DISABLED),
        ("u1", UserStatus.DISABLED),
        ("root2", UserStatus.ENABLED),  # never yourself
    }
    _action(root_client, "user", "enable_users", ids)
    assert set(User.objects.filter(pk__in=ids).values_list("status", flat=True)) == {UserStatus.ENABLED}


def test_admins_cannot_manage_their_peers_or_promote(client: Client) -> None:
    admin_user = User.objects.create_user("adm", "pw-12345678", role=Role.ADMIN)
    peer = User.objects.create_user("peer", "pw-12345678", role=Role.ADMIN)
    plain = User.objects.create_user("plain", "pw-12345678")
    client.force_login(admin_user)
    assert client.post(reverse("admin:accounts_user_change", args=[peer.pk]), _change_data(peer)).status_code == 403
    response = client.post(reverse("admin:accounts_user_change", args=[plain.pk]), _change_data(plain, role=Role.ROOT))
    assert response.status_code == 200  # invalid choice
    plain.refresh_from_db()
    assert plain.role == Role.USER
    _action(client, "user", "disable_users", [peer.pk, plain.pk])
    assert User.objects.get(pk=peer.pk).status == UserStatus.ENABLED
    assert User.objects.get(pk=plain.pk).status == UserStatus.DISABLED


def test_deleting_a_user_takes_its_keys(root_client: Client) -> None:
    user = User.objects.create_user("ivan", "pw-12345678")
    api_key_create(user=user, name="ivan-key")
    url = reverse("admin:accounts_user_delete", args=[user.pk])
    assert root_client.get(url).status_code == 200
    assert root_client.post(url, {"post": "yes"}).status_code == 302
    assert not User.objects.filter(username="ivan").exists() and not ApiKey.objects.filter(name="ivan-key").exists()


def test_regenerate_access_token_shows_it_once(root_client: Client) -> None:
    user = User.objects.create_user("gina", "pw-12345678")
    response = _action(root_client, "user", "regenerate_access_tokens", [user.pk])
    [message] = [m for m in _messages(response) if "Access token" in m]
    token = message.split("<code>")[1].split("</code>")[0]
    user.refresh_from_db()
    assert user.access_token_digest == digest(token)


# ----------------------------------------------------------------------------------- relay keys


def _key_add_data(user: User, **overrides: Any) -> dict[str, Any]:
    data = {
        "user": user.pk,
        "name": "ci key",
        "remain_quota": "0",
        "remain_quota_usd": "",
        "expires_at_0": "",
        "expires_at_1": "",
        "allowed_models": "gpt-4o, gpt-4o-mini",
        "subnet": "10.0.0.0/8",
    }
    data.update(overrides)
    return data


def test_create_key_shows_the_raw_key_once_and_stores_its_digest(root_client: Client, root: User) -> None:
    response = root_client.post(
        reverse("admin:accounts_apikey_add"), _key_add_data(root, remain_quota_usd="1.5"), follow=True
    )
    assert response.status_code == 200
    [message] = [m for m in _messages(response) if "New key" in m]
    raw = message.split("<code>")[1].split("</code>")[0]
    assert raw.startswith("sk-")
    key = ApiKey.objects.get(name="ci key")
    assert key.digest == hashlib.sha256(raw.removeprefix("sk-").encode()).hexdigest()
    assert (key.remain_quota, key.allowed_models, key.subnet) == (750_000, "gpt-4o,gpt-4o-mini", "10.0.0.0/8")
    assert raw in response.content.decode()  # shown on the page we land on ...
    again = root_client.get(reverse("admin:accounts_apikey_change", args=[key.pk]))
    assert raw not in again.content.decode()  # ... and never again
    assert raw.removeprefix("sk-") not in again.content.decode()


def test_create_key_refuses_bad_subnet_and_double_quota(root_client: Client, root: User) -> None:
    url = reverse("admin:accounts_apikey_add")
    assert root_client.post(url, _key_add_data(root, subnet="10.0.0.0/99")).status_code == 200
    assert root_client.post(url, _key_add_data(root, remain_quota="5", remain_quota_usd="1")).status_code == 200
    assert not ApiKey.objects.filter(name="ci key").exists()


def test_key_change_adjusts_quota_relatively(root_client: Client, root: User) -> None:
    key, _ = api_key_create(user=root, name="k", remain_quota=1000)
    ApiKey.objects.filter(pk=key.pk).update(remain_quota=400, used_quota=600)  # spent meanwhile
    data = {
        "name": "renamed",
        "status": KeyStatus.ENABLED,
        "expires_at_0": "",
        "expires_at_1": "",
        "allowed_models": "",
        "subnet": "",
        "adjust_usd": "1",
        "remain_quota": "999999",
    }
    response = root_client.post(reverse("admin:accounts_apikey_change", args=[key.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    key.refresh_from_db()
    assert (key.name, key.remain_quota, key.used_quota) == ("renamed", 400 + 500_000, 600)


def test_enable_and_disable_keys(root_client: Client, root: User) -> None:
    keys = [api_key_create(user=root, name=f"k{i}")[0] for i in range(2)]
    ids = [k.pk for k in keys]
    _action(root_client, "apikey", "disable_keys", ids)
    assert set(ApiKey.objects.filter(pk__in=ids).values_list("status", flat=True)) == {KeyStatus.DISABLED}
    _action(root_client, "apikey", "enable_keys", ids)
    assert set(ApiKey.objects.filter(pk__in=ids).values_list("status", flat=True)) == {KeyStatus.ENABLED}


def test_key_list_filters_by_user(root_client: Client, root: User) -> None:
    other = User.objects.create_user("hank", "pw-12345678")
    api_key_create(user=root, name="root-key")
    api_key_create(user=other, name="hank-key")
    response = root_client.get(reverse("admin:accounts_apikey_changelist") + f"?user__id__exact={other.pk}")
    content = response.content.decode()
    assert "hank-key" in content and "root-key" not in content
