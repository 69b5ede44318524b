"""A real Celery worker and beat: scheduled channel tests disable and re-enable a channel, and
retention deletes exactly the old rows.

The broker is Redis when REDIS_CONN_STRING is set (the PostgreSQL run), else the embedded
filesystem broker in a temporary DATA_DIR; the queue name is unique to this run. Beat's
periods come from the BEAT_* variables (the schedule is data), shortened to seconds here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import Role
from billing.models import ConsumeLog, LogType
from channels_app.models import Channel, ChannelStatus
from conftest import ROOT, _database_env
from relay.models import Option, Trace
from relay.tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


class Celery:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = {
            **os.environ,
            **_database_env(),
            "DJANGO_SETTINGS_MODULE": "oneapi_site.settings",
            "SESSION_SECRET": settings.SECRET_KEY,
            "DATA_DIR": str(tmp),
            "ONEAPI_TESTING": "false",
            "CELERY_DEFAULT_QUEUE": f"test-{uuid.uuid4().hex[:12]}",
            "CHANNEL_TEST_FREQUENCY": "1",
            "LOG_RETENTION_DAYS": "30",
            "TRACE_RETENTION_DAYS": "7",
            "BEAT_PURGE_LOGS": "2",
            "BEAT_PURGE_TRACES": "2",
            "BEAT_ROLLUP_USAGE": "off",
            "BEAT_REFRESH_BALANCES": "off",
            "RETENTION_BATCH_SIZE": "2",  # several batches for a handful of rows
            "RELAY_TIMEOUT": "5",
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        commands = {
            "worker": ["worker", "--pool", "solo", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            "beat": ["beat", "--loglevel", "INFO", "--schedule", str(self.tmp / "beat-schedule"), "--max-interval", "1"],
        }
        for name, args in commands.items():
            log = (self.tmp / f"{name}.log").open("wb")
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "oneapi_site", *args],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def celery(tmp_path: Path) -> Iterator[Celery]:
    running = Celery(tmp_path)
    running.start()
    yield running
    running.stop()


def _wait(celery: Celery, predicate, timeout: float = 45.0):  # type: ignore[no-untyped-def]
    try:
        return wait_for(predicate, timeout=timeout, interval=0.25)
    except AssertionError:
        raise AssertionError("timed out; worker log:\n" + celery.log("worker")[-3000:] + "\nbeat log:\n" + celery.log("beat")[-1500:]) from None


def test_scheduled_channel_tests_disable_a_failing_channel_and_re_enable_it(celery, make_user, make_channel, unique_model):
    Option.objects.create(key="AutomaticDisableChannelEnabled", value="true")
    Option.objects.create(key="AutomaticEnableChannelEnabled", value="true")
    root = make_user(role=Role.ROOT)
    root.email = "root@example.com"
    root.save()
    channel = make_channel(unique_model, scenario="401")

    def status() -> int:
        return Channel.objects.get(pk=channel.pk).status

    _wait(celery, lambda: status() == ChannelStatus.AUTO_DISABLED)
    assert "Incorrect API key" in Channel.objects.get(pk=channel.pk).last_test_error
    # The upstream recovers (here: its key is fixed); the next scheduled test re-enables it.
    Channel.objects.filter(pk=channel.pk).update(base_url=channel.base_url.replace("/s/401", ""))
    _wait(celery, lambda: status() == ChannelStatus.ENABLED)
    refreshed = Channel.objects.get(pk=channel.pk)
    assert refreshed.last_test_error == "" and refreshed.test_time is not None
    # The operator heard about both (console e-mail backend: the worker's log).
    _wait(celery, lambda: "was enabled again" in celery.log("worker"), timeout=15)
    worker_log = celery.log("worker")
    assert f"Subject: Channel #{channel.pk} {channel.name} was disabled" in worker_log
    assert "To: root@example.com" in worker_log


def test_retention_deletes_exactly_the_old_rows(celery):
    now = timezone.now()
    ages = {"old": 31, "older": 90, "recent": 29, "new": 0}
    for label, days in ages.items():
        for i in range(3):
            ConsumeLog.objects.create(type=LogType.CONSUME, created_at=now - timedelta(days=days), request_id=f"r-{label}-{i}")
    traces = {
        label: Trace.objects.create(request_id=f"t-{label}", created_at=now - timedelta(days=days))
        for label, days in {"old": 8, "recent": 6}.items()
    }
    expected_logs = set(ConsumeLog.objects.filter(created_at__gte=now - timedelta(days=30)).values_list("pk", flat=True))
    assert len(expected_logs) == 6 and ConsumeLog.objects.count() == 12
    _wait(celery, lambda: set(ConsumeLog.objects.values_list("pk", flat=True)) == expected_logs)
    _wait(celery, lambda: set(Trace.objects.values_list("request_id", flat=True)) == {"t-recent"})
    assert traces["recent"].pk in set(Trace.objects.values_list("pk", flat=True))
