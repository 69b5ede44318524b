"""Start-up behaviour: strict env vars, first-start bootstrap, the Procfile runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.keys import digest
from accounts.models import ApiKey, Role, User
from accounts.services import bootstrap_first_start
from oneapi_site.env import env_bool, env_database, env_int
from oneapi_site.management.commands.runall import expand, read_procfile

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "reader, name, value, message",
    [
        (lambda: env_int("PORT", 3000), "PORT", "30o0", "PORT must be a whole number"),
        (lambda: env_bool("DEBUG", False), "DEBUG", "maybe", "DEBUG must be true or false"),
        (lambda: env_database("SQL_DSN"), "SQL_DSN", "oracle://x/y", "SQL_DSN"),
    ],
)
def test_bad_env_values_name_the_variable(monkeypatch, reader, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        reader()


def test_a_bad_value_stops_start_up_with_the_variable_named(tmp_path):
    env = {**os.environ, "RELAY_TIMEOUT": "soon", "DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "oneapi_site.settings"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "RELAY_TIMEOUT must be a number" in result.stderr
    assert "Traceback" not in result.stderr.splitlines()[-1]


@pytest.mark.django_db
def test_first_start_creates_root_with_initial_key_and_access_token(settings, caplog):
    User.objects.all().delete()
    settings.INITIAL_ROOT_PASSWORD = ""
    settings.INITIAL_ROOT_TOKEN = "rootkey123"
    settings.INITIAL_ROOT_ACCESS_TOKEN = "0123456789abcdef0123456789abcdef"
    bootstrap_first_start()
    root = User.objects.get(username="root")
    assert root.role == Role.ROOT and not root.check_password("123456")
    printed = [r.getMessage() for r in caplog.records if "password" in r.getMessage()]
    password = printed[0].split("password: ")[1].split()[0]
    assert root.check_password(password)
    key = ApiKey.objects.get(user=root)
    assert key.digest == digest("rootkey123") and key.unlimited_quota
    assert root.access_token_digest == digest("0123456789abcdef0123456789abcdef")
    bootstrap_first_start()  # a second start changes nothing
    assert User.objects.count() == 1 and ApiKey.objects.count() == 1


def test_procfile_commands_expand_defaults_like_a_shell():
    processes = read_procfile(ROOT / "Procfile")
    assert set(processes) == {"web", "worker", "beat"}
    argv = expand(processes["web"], {"PORT": "4000"})
    assert argv[:4] == ["python", "-m", "oneapi_site.webserver", "oneapi_site.asgi:application"]
    assert argv[argv.index("--port") + 1] == "4000" and argv[argv.index("--host") + 1] == "0.0.0.0"
