"""The Celery beat schedule as data: each periodic task with a default that an env var overrides.

An override is a number of seconds (`300`), a five-field crontab (`30 3 * * *`, UTC) or `off`.
A malformed value stops start-up with the variable named, like every other setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from .env import env_str

Schedule = float | crontab


@dataclass(frozen=True)
class Periodic:
    name: str
    task: str
    env: str  # the variable that overrides `default`
    default: str  # seconds, a crontab or "off"
    enabled: bool = True  # False when the feature it serves is off (e.g. a retention of 0 days)


def parse_schedule(name: str, value: str) -> Schedule | None:
    """`value` of variable `name` as a Celery schedule; None for "off"."""
    value = value.strip()
    if value.lower() in {"off", "0", "false", "none", "disabled"}:
        return None
    fields = value.split()
    if len(fields) == 5:
        minute, hour, day_of_month, month_of_year, day_of_week = fields
        try:
            return crontab(
                minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
            )
        except Exception as exc:  # celery raises ValueError subclasses with its own message
            raise ImproperlyConfigured(f"{name} is not a valid crontab ({exc}): {value!r}") from None
    try:
        seconds = float(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be a number of seconds, a five-field crontab or off, got {value!r}"
        ) from None
    if seconds <= 0:
        return None
    return seconds


def _expires(schedule: Schedule) -> float:
    """A run that waited longer than its period is dropped: the next one is coming anyway."""
    if isinstance(schedule, float):
        return max(schedule * 0.9, 1.0)
    return 3600.0


def beat_schedule(entries: list[Periodic]) -> dict[str, dict[str, object]]:
    schedule: dict[str, dict[str, object]] = {}
    for entry in entries:
        if not entry.enabled:
            continue
        when = parse_schedule(entry.env, env_str(entry.env, entry.default))
        if when is None:
            continue
        schedule[entry.name] = {"task": entry.task, "schedule": when, "options": {"expires": _expires(when)}}
    return schedule
