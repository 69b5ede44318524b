"""Daily usage rollups and log retention (the tasks' services, run eagerly)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from billing.models import ConsumeLog, LogType, UsageDaily
from billing.tasks import purge_old_logs, rollup_recent_usage, rollup_usage

DAY = date(2026, 3, 14)


def log(at: datetime, *, user, key=None, model="m1", channel=None, kind=LogType.CONSUME, quota=100, prompt=10, completion=5):  # type: ignore[no-untyped-def]
    return ConsumeLog.objects.create(
        created_at=at, type=kind, user=user, api_key=key, model_name=model, channel=channel, quota=quota,
        prompt_tokens=prompt, completion_tokens=completion, cached_tokens=2, elapsed_ms=30,
    )


@pytest.mark.django_db
def test_rollup_sums_a_day_per_user_key_model_and_channel(make_user, make_key, make_channel):
    alice, bob = make_user(), make_user()
    alice_key, _ = make_key(alice)
    channel = make_channel("m1")
    noon = datetime(2026, 3, 14, 12, tzinfo=UTC)
    for _ in range(3):
        log(noon, user=alice, key=alice_key, channel=channel)
    log(noon, user=alice, key=alice_key, channel=channel, kind=LogType.ERROR, quota=0, prompt=0, completion=0)
    log(noon, user=alice, key=alice_key, model="m2", channel=channel, quota=7)
    log(datetime(2026, 3, 14, 23, 59, 59, tzinfo=UTC), user=bob, quota=1)
    log(datetime(2026, 3, 15, 0, 0, 0, tzinfo=UTC), user=bob, quota=1000)  # the next day
    log(noon, user=bob, kind=LogType.TOPUP, quota=5000)  # not usage
    assert rollup_usage.delay(DAY.isoformat()).get() == 3
    rows = {(r.user_id, r.api_key_id, r.model_name, r.channel_id): r for r in UsageDaily.objects.filter(day=DAY)}
    main = rows[(alice.pk, alice_key.pk, "m1", channel.pk)]
    assert (main.requests, main.errors, main.quota, main.prompt_tokens, main.completion_tokens) == (3, 1, 300, 30, 15)
    assert (main.cached_tokens, main.elapsed_ms) == (6, 90)
    assert rows[(alice.pk, alice_key.pk, "m2", channel.pk)].quota == 7
    assert rows[(bob.pk, None, "m1", None)].quota == 1
    # Idempotent: a second run (or a late settlement) recomputes the day, never adds twice.
    log(noon, user=bob, quota=2)
    assert rollup_usage.delay(DAY.isoformat()).get() == 3
    assert UsageDaily.objects.filter(day=DAY).count() == 3
    assert UsageDaily.objects.get(day=DAY, user=bob).quota == 3


@pytest.mark.django_db
def test_recent_rollup_covers_today_and_yesterday(make_user):
    user = make_user()
    now = timezone.now()
    log(now, user=user, quota=11)
    log(now - timedelta(days=1), user=user, quota=13)
    log(now - timedelta(days=3), user=user, quota=17)
    rollup_recent_usage.delay().get()
    assert sorted(UsageDaily.objects.values_list("quota", flat=True)) == [11, 13]


@pytest.mark.django_db
def test_log_retention_deletes_exactly_the_rows_older_than_the_retention(make_user, settings):
    settings.RETENTION_BATCH_SIZE = 3  # several small batches
    settings.LOG_RETENTION_DAYS = 30
    user = make_user()
    now = timezone.now()
    old = [log(now - timedelta(days=30, minutes=1), user=user).pk for _ in range(7)]
    kept = [log(now - timedelta(days=29, hours=23), user=user).pk for _ in range(4)]
    assert purge_old_logs.delay().get() == 7
    assert sorted(ConsumeLog.objects.values_list("pk", flat=True)) == sorted(kept)
    assert not ConsumeLog.objects.filter(pk__in=old).exists()
    assert purge_old_logs.delay().get() == 0
    settings.LOG_RETENTION_DAYS = 0  # keep everything
    assert purge_old_logs.delay().get() == 0 and ConsumeLog.objects.count() == 4
