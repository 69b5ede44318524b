"""The Celery app. Broker: Redis when REDIS_CONN_STRING is set, else a filesystem broker (settings)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oneapi_site.settings")

app = Celery("oneapi_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
