"""The beat schedule is data: defaults, env overrides, strict parsing; settings read at start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from oneapi_site.management.commands.runall import reset_metrics_dir
from oneapi_site.schedule import Periodic, beat_schedule, parse_schedule

ROOT = Path(__file__).resolve().parents[2]


def test_parse_schedule_reads_seconds_crontabs_and_off():
    assert parse_schedule("X", "300") == 300.0
    assert parse_schedule("X", "off") is None and parse_schedule("X", "0") is None
    cron = parse_schedule("X", "30 3 * * *")
    assert isinstance(cron, crontab) and cron.hour == {3} and cron.minute == {30}
    with pytest.raises(ImproperlyConfigured, match="X must be a number of seconds"):
        parse_schedule("X", "soon")
    with pytest.raises(ImproperlyConfigured, match="X is not a valid crontab"):
        parse_schedule("X", "99 * * * *")


def test_env_overrides_and_disabled_entries(monkeypatch):
    monkeypatch.setenv("BEAT_A", "15")
    entries = [
        Periodic("a", "app.tasks.a", "BEAT_A", "3600"),
        Periodic("b", "app.tasks.b", "BEAT_B", "5 4 * * *"),
        Periodic("c", "app.tasks.c", "BEAT_C", "60", enabled=False),
    ]
    schedule = beat_schedule(entries)
    assert set(schedule) == {"a", "b"}
    assert schedule["a"]["schedule"] == 15.0 and schedule["a"]["options"] == {"expires": 13.5}
    assert isinstance(schedule["b"]["schedule"], crontab)


def settings_in_subprocess(tmp_path: Path, env: dict[str, str]) -> dict[str, object]:
    code = (
        "import json; from django.conf import settings as s;"
        "print(json.dumps({'trace': s.TRACE_RETENTION_DAYS, 'beat': sorted(s.CELERY_BEAT_SCHEDULE),"
        " 'channel': [s.CHANNEL_RATE_LIMIT_ENABLED, s.CHANNEL_RATE_LIMIT_DEFAULT], 's5xx': s.CHANNEL_SUSPEND_SECONDS_FOR_5XX}))"
    )
    full = {**os.environ, "DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "oneapi_site.settings", **env}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_settings_accept_the_originals_misspelling_and_build_the_schedule(tmp_path):
    values = settings_in_subprocess(
        tmp_path,
        {"TRACE_RENTATION_DAYS": "9", "CHANNEL_TEST_FREQUENCY": "60", "LOG_RETENTION_DAYS": "30",
         "GLOBAL_CHANNEL_RATE_LIMIT": "true", "CHANNEL_SUSPEND_SECONDS_FOR_5XX": "12"},
    )
    assert values["trace"] == 9 and values["s5xx"] == 12
    assert {"test-all-channels", "purge-old-logs", "purge-old-traces", "rollup-usage", "refresh-channel-balances"} <= set(
        values["beat"]
    )
    assert values["channel"] == [True, 0]
    values = settings_in_subprocess(tmp_path, {"TRACE_RETENTION_DAYS": "0", "GLOBAL_CHANNEL_RATE_LIMIT": "50"})
    assert values["trace"] == 0 and "purge-old-traces" not in values["beat"] and "test-all-channels" not in values["beat"]
    assert "purge-old-logs" not in values["beat"]  # LOG_RETENTION_DAYS=0 keeps logs
    assert values["channel"] == [True, 50]


def test_runall_starts_metrics_from_an_empty_directory(tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "keep.txt").write_text("not ours")
    reset_metrics_dir(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_every_value_in_env_example_is_accepted(tmp_path):
    """Copying .env.example to .env must start: each documented default parses (comments too)."""
    code = (
        "import environ, os, sys; environ.Env.read_env(sys.argv[1], parse_comments=True, overwrite=True);"
        "os.environ['DATA_DIR'] = sys.argv[2];"
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.GLOBAL_RELAY_RATE_LIMIT, s.TRACE_RETENTION_DAYS, sorted(s.CELERY_BEAT_SCHEDULE))"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"SQL_DSN", "REDIS_CONN_STRING"}}
    env["DJANGO_SETTINGS_MODULE"] = "oneapi_site.settings"
    result = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / ".env.example"), str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("480 30 ")
