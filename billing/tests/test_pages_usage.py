"""Usage pages: dashboard numbers and charts, the usage log (filters, pages, CSV), models and prices."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from accounts.models import User
from billing.models import ChannelModelPrice, ConsumeLog, LogType, ModelPrice

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(make_user) -> User:  # type: ignore[no-untyped-def]
    return make_user(quota=2_000_000)


@pytest.fixture
def client(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


def log(user: User, *, model: str = "m1", quota: int = 1000, days_ago: int = 0, **fields: object) -> ConsumeLog:
    return ConsumeLog.objects.create(
        user=user,
        username=user.username,
        model_name=model,
        quota=quota,
        created_at=timezone.now() - timedelta(days=days_ago),
        request_id=f"req-{ConsumeLog.objects.count()}",
        **fields,
    )


def test_dashboard_shows_quota_and_per_day_charts(client: Client, user: User, make_user) -> None:  # type: ignore[no-untyped-def]
    log(user, quota=250_000)
    log(user, quota=250_000, model="m2", days_ago=2)
    log(user, quota=999, days_ago=20)
    log(make_user(), quota=123_456)  # someone else's
    User.objects.filter(pk=user.pk).update(used_quota=500_999)
    response = client.get("/dashboard/")
    page = response.content.decode()
    assert "$4.00" in page and "$1.00" in page  # 2,000,000 left; 500,999 used rounds to $1.00
    assert page.count('class="chart-bar"') == 14  # 7 bars in each of the two charts
    assert response.context["period_requests"] == 2
    values = [bar for bar in page.split("data-value=")[1:]]
    assert any(v.startswith('"250000"') for v in values)
    assert "123456" not in page
    assert [row.label for row, _ in response.context["top_models"]] == ["m1", "m2"]
    month = client.get("/dashboard/?days=30")
    assert month.context["period_requests"] == 3 and month.content.decode().count('class="chart-bar"') == 60
    assert client.get("/dashboard/?days=9999").context["days"] == 7  # unknown period: the default


def test_logs_filters(client: Client, user: User, make_key) -> None:  # type: ignore[no-untyped-def]
    key, _ = make_key(user, name="ci")
    log(user, model="alpha", api_key=key, token_name="ci")
    log(user, model="beta", days_ago=3)
    assert client.get("/logs/").context["page"].paginator.count == 2
    assert [entry.model_name for entry in client.get("/logs/?model=alpha").context["page"]] == ["alpha"]
    assert [entry.model_name for entry in client.get(f"/logs/?key={key.pk}").context["page"]] == ["alpha"]
    day = (timezone.now() - timedelta(days=3)).date().isoformat()
    assert [entry.model_name for entry in client.get(f"/logs/?start={day}&end={day}").context["page"]] == ["beta"]


@pytest.mark.parametrize(
    ("query", "message"),
    [("start=yesterday", "start date must look like"), ("end=2020-13-01", "end date"), ("key=abc", "one of your keys"),
     ("start=2025-02-02&end=2025-01-01", "must not be before")],
)
def test_bad_log_filters_are_explained(client: Client, user: User, query: str, message: str) -> None:
    log(user)
    response = client.get(f"/logs/?{query}")
    assert response.status_code == 200 and message in response.content.decode()
    assert response.context["page"].paginator.count == 0
    export = client.get(f"/logs/export.csv?{query}")
    assert export.status_code == 400 and message in export.content.decode()


def test_another_users_key_in_the_filter_is_404(client: Client, make_user, make_key) -> None:  # type: ignore[no-untyped-def]
    other_key, _ = make_key(make_user())
    assert client.get(f"/logs/?key={other_key.pk}").status_code == 404
    assert client.get(f"/logs/export.csv?key={other_key.pk}").status_code == 404


@override_settings(MAX_ITEMS_PER_PAGE=5)
def test_pages_are_capped_by_max_items_per_page(client: Client, user: User) -> None:
    for _ in range(12):
        log(user)
    first = client.get("/logs/?size=50")
    assert len(first.context["page"]) == 5 and first.context["page"].paginator.num_pages == 3
    assert "page=2" in first.content.decode()
    assert len(client.get("/logs/?size=5&page=3").context["page"]) == 2
    assert client.get("/logs/?page=99").context["page"].number == 3
    assert client.get("/logs/?size=abc").status_code == 200


def test_csv_export_has_the_rows_and_defuses_formulas(client: Client, user: User) -> None:
    log(user, model="=HYPERLINK(\"http://evil\")", quota=500_000, prompt_tokens=10, completion_tokens=3, is_stream=True)
    log(user, model="ok-model", type=LogType.TOPUP)
    response = client.get("/logs/export.csv")
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "time (UTC)" and len(rows) == 3
    evil = next(r for r in rows if "HYPERLINK" in r[4])
    assert evil[4].startswith("'=") and evil[6:8] == ["10", "3"] and evil[11] == "1.000000" and evil[13] == "yes"
    only_topups = list(csv.reader(io.StringIO(b"".join(client.get("/logs/export.csv?model=ok-model").streaming_content).decode())))
    assert len(only_topups) == 2


def test_models_page_is_public_with_group_prices(make_channel, make_user, unique_model: str) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(f"{unique_model},{unique_model}-b,{unique_model}-c", groups="default,vip")
    ModelPrice.objects.create(model=unique_model, input_price=Decimal("3"), output_price=Decimal("15"), cached_input_price=Decimal("0.3"))
    ChannelModelPrice.objects.create(channel=channel, model=f"{unique_model}-b", input_price=Decimal("1"), output_price=Decimal("2"))
    page = Client().get("/models/")
    rows = {row.model: row for row in page.context["rows"]}
    assert (rows[unique_model].input, rows[unique_model].cached_input, rows[unique_model].output) == (3, Decimal("0.3"), 15)
    assert rows[f"{unique_model}-b"].source == "channel price"
    assert rows[f"{unique_model}-c"].source == "default price" and rows[f"{unique_model}-c"].input == Decimal("2.5")
    assert "$3" in page.content.decode()
    vip_user = make_user(group="vip", ratio="2")
    client = Client()
    client.force_login(vip_user)
    vip_rows = {row.model: row for row in client.get("/models/").context["rows"]}
    assert vip_rows[unique_model].input == 6 and client.get("/models/").context["group"] == "vip"
