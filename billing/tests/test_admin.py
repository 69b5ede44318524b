"""Admin for prices, the ledger (charges, consume logs) and runtime options."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Role, User
from billing.admin import format_usd, usd_to_quota
from billing.models import ChargeStatus, ConsumeLog, LogType, ModelPrice, RequestCharge
from channels_app.models import Channel
from relay.models import Option
from relay.options import OPTION_SPECS, OptionSpec

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client(client: Client) -> Client:
    client.force_login(User.objects.create_user("root2", "pw-12345678", role=Role.ROOT))
    return client


@pytest.fixture
def log_row() -> ConsumeLog:
    user = User.objects.create_user("ivy", "pw-12345678")
    channel = Channel.objects.create(name="up", type=1, key="k", base_url="http://127.0.0.1:9", model_names="m")
    return ConsumeLog.objects.create(
        user=user,
        username=user.username,
        token_name="laptop",
        model_name="gpt-4o",
        upstream_model="gpt-4o-2024-08-06",
        channel=channel,
        prompt_tokens=1200,
        completion_tokens=300,
        cached_tokens=1000,
        quota=1_234_567,
        elapsed_ms=812,
        is_stream=True,
        request_id="req-abc123",
    )


def test_format_usd_and_back() -> None:
    assert format_usd(1_500_000) == "$3.00"
    assert format_usd(1_234_567) == "$2.47"
    assert format_usd(1_234_567, precise=True) == "$2.469134"
    assert format_usd(1_500_000, precise=True) == "$3.00"
    assert format_usd(250_000) == "$0.50"
    assert format_usd(1) == "$0.000002"
    assert format_usd(0) == "$0.00"
    assert format_usd(-1_000_000) == "-$2.00"
    assert format_usd(2_000_000_000_000) == "$4,000,000.00"
    assert usd_to_quota(Decimal("2.469134")) == 1_234_567


@pytest.mark.parametrize(
    ("app_model", "add_status"),
    [
        ("billing_modelprice", 200),
        ("billing_channelmodelprice", 200),
        ("billing_requestcharge", 403),  # the ledger is view-only
        ("billing_consumelog", 403),
        ("relay_option", 200),
    ],
)
def test_changelist_and_add_pages(root_client: Client, log_row: ConsumeLog, app_model: str, add_status: int) -> None:
    assert root_client.get(reverse(f"admin:{app_model}_changelist")).status_code == 200
    assert root_client.get(reverse(f"admin:{app_model}_add")).status_code == add_status


def test_consume_log_list_shows_usd_and_quota(root_client: Client, log_row: ConsumeLog) -> None:
    content = root_client.get(reverse("admin:billing_consumelog_changelist")).content.decode()
    for text in ("req-abc123", "laptop", "gpt-4o-2024-08-06", "$2.469134", "1234567", "812"):
        assert text in content


@pytest.mark.parametrize("query", ["req-abc123", "ivy", "gpt-4o"])
def test_consume_log_search(root_client: Client, log_row: ConsumeLog, query: str) -> None:
    ConsumeLog.objects.create(username="someone", model_name="claude", request_id="req-other")
    content = root_client.get(reverse("admin:billing_consumelog_changelist"), {"q": query}).content.decode()
    assert "req-abc123" in content and "req-other" not in content


def test_consume_log_filters(root_client: Client, log_row: ConsumeLog) -> None:
    ConsumeLog.objects.create(type=LogType.MANAGE, username="ivy", request_id="req-manage")
    url = reverse("admin:billing_consumelog_changelist")
    content = root_client.get(url, {"type__exact": LogType.MANAGE}).content.decode()
    assert "req-manage" in content and "req-abc123" not in content
    content = root_client.get(url, {"is_stream__exact": "1"}).content.decode()
    assert "req-abc123" in content and "req-manage" not in content


def test_consume_log_is_view_only(root_client: Client, log_row: ConsumeLog) -> None:
    change_url = reverse("admin:billing_consumelog_change", args=[log_row.pk])
    assert root_client.get(change_url).status_code == 200
    assert root_client.post(change_url, {"quota": "0"}).status_code == 403
    assert root_client.post(reverse("admin:billing_consumelog_delete", args=[log_row.pk])).status_code == 403
    log_row.refresh_from_db()
    assert log_row.quota == 1_234_567


def test_request_charges_of_deleted_users_stay_listed(root_client: Client) -> None:
    RequestCharge.objects.create(
        request_id="req-gone", user_id=987654, held_quota=600, quota=500, status=ChargeStatus.SETTLED
    )
    response = root_client.get(reverse("admin:billing_requestcharge_changelist"))
    content = response.content.decode()
    assert "req-gone" in content and "#987654" in content and "$0.001" in content
    charge = RequestCharge.objects.get()
    assert root_client.get(reverse("admin:billing_requestcharge_change", args=[charge.pk])).status_code == 200


def test_model_price_is_edited_in_usd_per_million(root_client: Client) -> None:
    response = root_client.post(
        reverse("admin:billing_modelprice_add"),
        {"model": "gpt-4o", "input_price": "2.5", "output_price": "10", "cached_input_price": "1.25"},
    )
    assert response.status_code == 302
    price = ModelPrice.objects.get(model="gpt-4o")
    assert (price.input_price, price.cached_input_price, price.cache_write_price) == (
        Decimal("2.5"),
        Decimal("1.25"),
        None,
    )


# ---------------------------------------------------------------------------------------- options


def test_options_page_lists_every_known_key_with_its_default(root_client: Client) -> None:
    Option.objects.create(key="RetryTimes", value="5")
    content = root_client.get(reverse("admin:relay_option_changelist")).content.decode()
    for key in OPTION_SPECS:
        assert key in content
    assert "How many other channels to try" in content
    assert reverse("admin:relay_option_change", args=["RetryTimes"]) in content
    assert reverse("admin:relay_option_add") + "?key=LogConsumeEnabled" in content


def test_option_add_is_prefilled_from_the_known_list(root_client: Client) -> None:
    response = root_client.get(reverse("admin:relay_option_add"), {"key": "RetryTimes", "value": "2"})
    form = response.context["adminform"].form
    assert (form.initial["key"], form.initial["value"]) == ("RetryTimes", "2")


@pytest.mark.parametrize(
    ("key", "bad", "problem"),
    [
        ("RetryTimes", "three", "RetryTimes"),
        ("LogConsumeEnabled", "maybe", "expected true or false"),
        ("DefaultInputPrice", "-1", "negative"),
    ],
)
def test_option_values_are_validated_by_their_parser(root_client: Client, key: str, bad: str, problem: str) -> None:
    response = root_client.post(reverse("admin:relay_option_add"), {"key": key, "value": bad})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["value"]
    assert any(problem in e for e in errors), errors
    assert not Option.objects.filter(key=key).exists()


def test_option_good_value_is_saved_and_changed(root_client: Client) -> None:
    assert root_client.post(reverse("admin:relay_option_add"), {"key": "RetryTimes", "value": " 4 "}).status_code == 302
    assert Option.objects.get(key="RetryTimes").value == "4"
    change_url = reverse("admin:relay_option_change", args=["RetryTimes"])
    assert root_client.post(change_url, {"value": "x"}).status_code == 200
    assert root_client.post(change_url, {"value": "1"}).status_code == 302
    assert Option.objects.get(key="RetryTimes").value == "1"


def test_unknown_imported_options_are_kept_as_text(root_client: Client) -> None:
    assert (
        root_client.post(
            reverse("admin:relay_option_add"), {"key": "SMTPServer", "value": "smtp.example.com"}
        ).status_code
        == 302
    )
    assert "(not a known option)" in root_client.get(reverse("admin:relay_option_changelist")).content.decode()


def test_secret_options_are_never_shown_back(root_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OPTION_SPECS, "SMTPToken", OptionSpec("", str, "SMTP password.", secret=True))
    Option.objects.create(key="SMTPToken", value="hunter2-secret")
    assert "hunter2-secret" not in root_client.get(reverse("admin:relay_option_changelist")).content.decode()
    change_url = reverse("admin:relay_option_change", args=["SMTPToken"])
    assert "hunter2-secret" not in root_client.get(change_url).content.decode()
    assert root_client.post(change_url, {"value": ""}).status_code == 302  # blank keeps it
    assert Option.objects.get(key="SMTPToken").value == "hunter2-secret"
    assert root_client.post(change_url, {"value": "new-secret"}).status_code == 302
    assert Option.objects.get(key="SMTPToken").value == "new-secret"
