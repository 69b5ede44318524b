"""Fixtures for the browser tests: Debian's chromium driven by Playwright, and a gateway process
of their own whose e-mails land in files (EMAIL_FILE_PATH) that the test reads.

Playwright's own browser download is not used: `.ci/run` installs chromium with apt.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import LiveGateway, start_gateway, stop_gateway

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@pytest.fixture(scope="module")
def mail_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mail")


@pytest.fixture(scope="module")
def web_gateway(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory, mail_dir: Path) -> Iterator[LiveGateway]:
    gateway = start_gateway(tmp_path_factory.mktemp("web-gateway"), {"EMAIL_FILE_PATH": str(mail_dir)})
    yield gateway
    stop_gateway(gateway)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop on this thread; the tests' ORM calls are plain
    # synchronous code between its calls, which Django's async guard would otherwise refuse.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            yield instance
            instance.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def screenshot(page: Any, name: str) -> Path:
    """Keep a full-page picture of what the test saw (git-ignored test output)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def read_link(mail_dir: Path, pattern: str, *, to: str, timeout: float = 10.0) -> str:
    """The first URL matching `pattern` in an e-mail to `to` that the gateway wrote to `mail_dir`."""
    deadline = time.monotonic() + timeout
    regex = re.compile(pattern)
    while time.monotonic() < deadline:
        for path in sorted(mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True):
            text = path.read_text(errors="replace")
            if f"To: {to}" not in text:
                continue
            match = regex.search(text)
            if match:
                return match.group(0)
        time.sleep(0.2)
    raise AssertionError(f"no e-mail to {to} with a link matching {pattern!r} in {mail_dir}")
