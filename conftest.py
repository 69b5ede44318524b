"""Shared fixtures: a fake upstream process, a live gateway process on the test database, factories.

End-to-end tests talk to a real gateway server (uvicorn, the production ASGI app) over
loopback with the official SDKs; the gateway talks to the project's fake provider process.
Tests that use the live gateway need committed data: mark them
`@pytest.mark.django_db(transaction=True)`. Each test uses its own model names (`unique_model`),
so a gateway snapshot left over from an earlier test can never route its requests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from fakeprovider.process import FakeProvider, start_fake_provider

ROOT = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def fake_provider() -> Iterator[FakeProvider]:
    with start_fake_provider() as fp:
        yield fp


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database_env() -> dict[str, str]:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return {"SQLITE_PATH": str(db["NAME"]), "SQL_DSN": ""}
    scheme = "postgres" if db["ENGINE"].endswith("postgresql") else "mysql"
    auth = db.get("USER") or ""
    if db.get("PASSWORD"):
        auth += ":" + db["PASSWORD"]
    host = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or (5432 if scheme == 'postgres' else 3306)}"
    return {"SQL_DSN": f"{scheme}://{auth + '@' if auth else ''}{host}/{db['NAME']}"}


@dataclass
class LiveGateway:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_gateway(tmp_dir: Path, extra_env: dict[str, str] | None = None) -> LiveGateway:
    port = _free_port()
    env = {
        **os.environ,
        **_database_env(),
        "DJANGO_SETTINGS_MODULE": "oneapi_site.settings",
        "SESSION_SECRET": settings.SECRET_KEY,  # channel keys are encrypted with it
        "DATA_DIR": str(tmp_dir),
        "DEBUG": "false",
        "RELAY_TIMEOUT": "3",
        "CACHE_CHANGE_POLL_SECONDS": "0.2",
        "ONEAPI_TESTING": "false",
        # The session's gateway serves the whole suite from one address and a few keys; the
        # rate-limit tests start their own gateways with limits on.
        "RATE_LIMIT_DISABLED": "true",
        **(extra_env or {}),
    }
    log_path = tmp_dir / f"gateway-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "oneapi_site.webserver", "oneapi_site.asgi:application", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gateway exited:\n" + log_path.read_text(errors="replace")[-3000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return LiveGateway(f"http://127.0.0.1:{port}", process, log_path)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("gateway did not start in 30 s:\n" + log_path.read_text(errors="replace")[-3000:])


def stop_gateway(gateway: LiveGateway) -> None:
    gateway.process.terminate()
    try:
        gateway.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        gateway.process.kill()


@pytest.fixture(scope="session")
def live_gateway(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    gateway = start_gateway(tmp_path_factory.mktemp("gateway"))
    yield gateway
    stop_gateway(gateway)


# ------------------------------------------------------------------------------------ factories


@pytest.fixture
def unique_model() -> str:
    return f"model-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_user(db: Any):  # type: ignore[no-untyped-def]
    from accounts.models import Group, User

    def make(*, quota: int = 10_000_000, group: str = "default", role: int = 1, ratio: str | None = None) -> User:
        grp, _ = Group.objects.get_or_create(name=group)
        if ratio is not None:
            grp.ratio = ratio
            grp.save()
        return User.objects.create_user(f"u{uuid.uuid4().hex[:12]}", "pw-12345678", quota=quota, group=grp, role=role)

    return make


@pytest.fixture
def make_key(db: Any):  # type: ignore[no-untyped-def]
    from accounts.services import api_key_create

    def make(user: Any, **kwargs: Any) -> tuple[Any, str]:
        kwargs.setdefault("name", "test key")
        kwargs.setdefault("unlimited_quota", "remain_quota" not in kwargs)
        return api_key_create(user=user, **kwargs)

    return make


@pytest.fixture
def make_channel(db: Any, fake_provider: FakeProvider):  # type: ignore[no-untyped-def]
    from channels_app.models import Channel

    def make(models: str, *, scenario: str | None = None, **kwargs: Any) -> Channel:
        base = fake_provider.base_url + (f"/s/{scenario}" if scenario else "")
        fields = {"type": 1, "name": f"fake {scenario or 'ok'}", "key": "sk-upstream", "base_url": base, "groups": "default"}
        fields.update(kwargs)
        return Channel.objects.create(model_names=models, **fields)

    return make
