"""The whole story in a real browser (Debian's chromium through Playwright) against a live gateway.

An operator adds a channel in the admin and tests it, and generates redemption codes; a new user
signs up, verifies the e-mail from the link the gateway wrote to a file, logs in, creates a key,
calls `/v1` with it through the openai SDK, finds the request in the usage page and the charts,
redeems a code, chats in the playground. Every page is kept as a screenshot in test-output/.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from openai import OpenAI

from accounts.models import ApiKey, Role, User
from billing.models import ConsumeLog, LogType
from channels_app.models import Channel
from relay.models import Option

from .conftest import read_link, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-battery-9"
WELCOME_QUOTA = 2_500_000  # $5, granted by QuotaForNewUser


def _operator_adds_and_tests_channel(page: Any, base: str, fake_url: str, model: str) -> Channel:
    page.goto(f"{base}/admin/channels_app/channel/add/")
    page.fill("#id_name", "browser fake")
    page.select_option("#id_type", "1")
    page.fill("#id_key", "sk-upstream-test")
    page.fill("#id_base_url", fake_url)
    page.fill("#id_model_names", model)
    page.fill("#id_groups", "default")
    screenshot(page, "admin-channel-add")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    channel = Channel.objects.get(name="browser fake")
    page.goto(f"{base}/admin/channels_app/channel/")
    page.check(f"input[name=_selected_action][value='{channel.pk}']")
    page.select_option("select[name=action]", "test_channels")
    page.click("button[name=index]")
    message = page.wait_for_selector("ul.messagelist li")
    assert "OK in" in message.inner_text(), message.inner_text()
    screenshot(page, "admin-channel-tested")
    channel.refresh_from_db()
    assert channel.test_time is not None and channel.last_test_error == ""
    return channel


def _operator_generates_codes(page: Any, base: str) -> list[str]:
    page.goto(f"{base}/admin/accounts/redemption/add/")
    page.fill("#id_name", "browser batch")
    page.fill("#id_amount_usd", "3")
    page.fill("#id_count", "2")
    page.click("input[type=submit]")
    codes = page.input_value("#generated-codes").split()
    assert len(codes) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", c) for c in codes)
    assert page.get_attribute("#download-csv", "href").startswith("data:text/csv")
    screenshot(page, "admin-redemptions-generated")
    return codes


def _sign_up_and_verify(page: Any, base: str, mail_dir: Path, username: str, email: str) -> None:
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=username]", username)
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    screenshot(page, "signup")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/accounts/confirm-email/$"))
    screenshot(page, "signup-verification-sent")
    # Not verified yet: logging in sends the user back to "verify your e-mail".
    link = read_link(mail_dir, r"http://[^\s]+/accounts/confirm-email/[^\s/]+/", to=email)
    page.goto(link)
    page.wait_for_url(re.compile(r"/dashboard/$"))


def _log_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", PASSWORD)
    screenshot(page, "login")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard/$"))


def _create_key(page: Any, base: str, model: str) -> str:
    page.goto(f"{base}/keys/new/")
    page.fill("#id_name", "laptop")
    page.uncheck("#id_unlimited_quota")
    page.fill("#id_quota_usd", "1")
    page.click(f"[data-add-model='{model}']")
    assert page.input_value("#id_allowed_models") == model
    screenshot(page, "key-new")
    page.click("main form button[type=submit]")
    raw = page.inner_text("#raw-key").strip()
    assert raw.startswith("sk-")
    screenshot(page, "key-created")
    return raw


def test_user_journey(browser: Any, web_gateway: Any, mail_dir: Path, fake_provider: Any, unique_model: str) -> None:
    base = web_gateway.url
    Option.objects.update_or_create(key="QuotaForNewUser", defaults={"value": str(WELCOME_QUOTA)})
    operator_user = User.objects.create_user("operator", role=Role.ROOT)
    # The gateway process does not have the test settings' fast MD5 hasher.
    operator_user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    operator_user.save(update_fields=["password"])

    operator = browser.new_page()
    operator.goto(f"{base}/admin/login/")
    operator.fill("#id_username", "operator")
    operator.fill("#id_password", PASSWORD)
    operator.click("input[type=submit]")
    _operator_adds_and_tests_channel(operator, base, fake_provider.base_url, unique_model)
    codes = _operator_generates_codes(operator, base)

    username = f"u{uuid.uuid4().hex[:8]}"
    email = f"{username}@example.com"
    page = browser.new_context().new_page()
    _sign_up_and_verify(page, base, mail_dir, username, email)
    user = User.objects.get(username=username)
    assert user.quota == WELCOME_QUOTA and user.email == email
    page.click("button:has-text('Sign out')")
    _log_in(page, base, username)
    screenshot(page, "dashboard-empty")

    raw = _create_key(page, base, unique_model)
    client = OpenAI(base_url=f"{base}/v1", api_key=raw, max_retries=0)
    answer = client.chat.completions.create(model=unique_model, messages=[{"role": "user", "content": "Hello browser"}])
    assert answer.choices[0].message.content == "Fake reply to: Hello browser"
    streamed = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model=unique_model, messages=[{"role": "user", "content": "Stream please"}], stream=True
        )
        if chunk.choices
    )
    assert streamed == "Fake reply to: Stream please"
    spent = sum(ConsumeLog.objects.filter(user=user, type=LogType.CONSUME).values_list("quota", flat=True))
    assert spent > 0

    page.goto(f"{base}/logs/")
    rows = page.locator("#logs-table tbody tr")
    assert rows.count() >= 2 and unique_model in page.inner_text("#logs-table")
    assert "laptop" in page.inner_text("#logs-table")
    screenshot(page, "usage-logs")
    page.select_option("#f-key", str(ApiKey.objects.get(user=user, name="laptop").pk))
    page.click("form.filters button[type=submit]")
    assert unique_model in page.inner_text("#logs-table")

    page.goto(f"{base}/dashboard/")
    today_bars = page.locator("svg.chart.cost rect.chart-bar").last
    assert int(today_bars.get_attribute("data-value")) == spent
    assert int(page.locator("svg.chart:not(.cost) rect.chart-bar").last.get_attribute("data-value")) == 2
    assert unique_model in page.inner_text("main")
    screenshot(page, "dashboard")

    page.goto(f"{base}/topup/")
    before = User.objects.get(pk=user.pk).quota
    page.fill("#id_code", codes[0])
    page.click("main form button[type=submit]")
    page.wait_for_selector(".message.success")
    assert User.objects.get(pk=user.pk).quota == before + 1_500_000
    assert "$" in page.inner_text("#balance")
    page.fill("#id_code", codes[0])
    page.click("main form button[type=submit]")
    assert "already been used" in page.inner_text(".errorlist")
    assert User.objects.get(pk=user.pk).quota == before + 1_500_000
    screenshot(page, "topup")

    page.goto(f"{base}/playground/")
    page.click("#pg-new-key")
    page.wait_for_function("document.getElementById('pg-key').value.startsWith('sk-')")
    page.select_option("#pg-model", unique_model)
    page.fill("#pg-input", "Hi from the playground")
    page.keyboard.press("Enter")
    reply = page.wait_for_selector(".bubble.assistant[data-done]")
    assert reply.inner_text() == "Fake reply to: Hi from the playground"
    screenshot(page, "playground")

    for path, name in (("/keys/", "keys"), ("/models/", "models"), ("/account/", "account"), ("/", "home")):
        page.goto(base + path)
        screenshot(page, name)
    assert unique_model in page.goto(f"{base}/models/").text()
    page.goto(f"{base}/account/")
    page.once("dialog", lambda dialog: dialog.accept())  # "Generate a new token?" confirmation
    page.click("button:has-text('Generate token')")
    assert re.fullmatch(r"[0-9a-f]{32}", page.inner_text("#access-token").strip())
    screenshot(page, "access-token")

    operator.goto(f"{base}/admin/")
    assert "Channel health" in operator.inner_text("#console-dashboard")
    screenshot(operator, "admin-index")
    operator.goto(f"{base}/admin/billing/consumelog/?q={ConsumeLog.objects.filter(user=user).exclude(request_id='').first().request_id}")
    screenshot(operator, "admin-log-search")
