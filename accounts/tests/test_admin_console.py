"""The operator console's additions: index charts and channel health, user top-up / promote /
demote actions, redemption code batches (generate, show once, export, enable/disable)."""

from __future__ import annotations

import csv
import io
from urllib.parse import unquote

import pytest
from django.test import Client

from accounts import keys
from accounts.models import Redemption, RedemptionStatus, Role, User
from billing.models import ConsumeLog, LogType

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-pass-42"


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def root() -> User:
    return User.objects.get(username="root")


def test_index_shows_charts_top_lists_and_channel_health(root: User, make_user, make_channel, unique_model: str) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(unique_model, name="health-check-me")
    spender = make_user()
    ConsumeLog.objects.create(user=spender, username=spender.username, model_name=unique_model, channel=channel, quota=500_000)
    page = logged_in(root).get("/admin/").content.decode()
    assert 'id="console-dashboard"' in page and page.count('class="chart-bar"') == 28
    assert spender.username in page and unique_model in page and "health-check-me" in page
    assert "$1.00" in page and "never" in page  # cost; the channel was never tested


def test_top_up_action_asks_then_applies(root: User, make_user) -> None:  # type: ignore[no-untyped-def]
    users = [make_user(quota=0), make_user(quota=0)]
    client = logged_in(root)
    ids = [u.pk for u in users]
    page = client.post("/admin/accounts/user/", {"action": "top_up_users", "_selected_action": ids})
    assert page.status_code == 200 and "Amount ($)" in page.content.decode()
    bad = client.post("/admin/accounts/user/", {"action": "top_up_users", "_selected_action": ids, "apply": "1", "amount_usd": "0"})
    assert "must not be zero" in bad.content.decode()
    done = client.post(
        "/admin/accounts/user/", {"action": "top_up_users", "_selected_action": ids, "apply": "1", "amount_usd": "1.5", "remark": "promo"}
    )
    assert done.status_code == 302
    assert [User.objects.get(pk=pk).quota for pk in ids] == [750_000, 750_000]
    assert ConsumeLog.objects.filter(type=LogType.TOPUP, content__contains="promo").count() == 2


def test_promote_and_demote_actions(root: User, make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    client = logged_in(root)
    client.post("/admin/accounts/user/", {"action": "promote_users", "_selected_action": [user.pk]})
    user.refresh_from_db()
    assert user.role == Role.ADMIN
    client.post("/admin/accounts/user/", {"action": "demote_users", "_selected_action": [user.pk]})
    user.refresh_from_db()
    assert user.role == Role.USER
    admin_user = User.objects.create_user("admin1", PASSWORD, role=Role.ADMIN)
    response = logged_in(admin_user).post("/admin/accounts/user/", {"action": "promote_users", "_selected_action": [user.pk]}, follow=True)
    assert "only the root user can promote" in response.content.decode()
    user.refresh_from_db()
    assert user.role == Role.USER


def test_generate_a_batch_shows_the_codes_once(root: User) -> None:
    client = logged_in(root)
    form = client.get("/admin/accounts/redemption/add/")
    assert form.status_code == 200 and "Value of each code" in form.content.decode()
    for bad in ({"name": "x", "amount_usd": "1", "count": "101"}, {"name": "", "amount_usd": "1", "count": "1"}, {"name": "x", "amount_usd": "-1", "count": "1"}):
        assert "errorlist" in client.post("/admin/accounts/redemption/add/", bad).content.decode()
    assert not Redemption.objects.exists()
    response = client.post("/admin/accounts/redemption/add/", {"name": "launch", "amount_usd": "2", "count": "5"})
    assert "no-store" in response["Cache-Control"]
    codes = response.context["codes"]
    assert len(codes) == 5 and Redemption.objects.count() == 5
    assert {r.key_digest for r in Redemption.objects.all()} == {keys.digest(c) for c in codes}
    assert all(r.quota == 1_000_000 and r.created_by_id == root.pk for r in Redemption.objects.all())
    exported = unquote(response.context["csv_href"].split(",", 1)[1])
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0][2] == "code" and {r[2] for r in rows[1:]} == set(codes)
    listing = client.get("/admin/accounts/redemption/").content.decode()
    assert all(c not in listing for c in codes)


def test_export_enable_disable_and_status_rules(root: User) -> None:
    from accounts.redemptions import redemptions_create

    created = redemptions_create(name="b", quota=10, count=2, created_by=root)
    used, spare = created[0][0], created[1][0]
    Redemption.objects.filter(pk=used.pk).update(status=RedemptionStatus.USED)
    client = logged_in(root)
    ids = [used.pk, spare.pk]
    export = client.post("/admin/accounts/redemption/", {"action": "export_csv", "_selected_action": ids})
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert len(rows) == 3 and all(r[2].endswith("…") for r in rows[1:])
    client.post("/admin/accounts/redemption/", {"action": "disable_codes", "_selected_action": ids})
    assert Redemption.objects.get(pk=used.pk).status == RedemptionStatus.USED
    assert Redemption.objects.get(pk=spare.pk).status == RedemptionStatus.DISABLED
    change = client.post(f"/admin/accounts/redemption/{used.pk}/change/", {"name": "b", "status": "1"})
    assert "cannot be enabled again" in change.content.decode()
    assert Redemption.objects.get(pk=used.pk).status == RedemptionStatus.USED
