"""The settings object itself, for code that reads settings on every relay request.

`django.conf.settings` is a lazy proxy: since Django 4.1 every attribute read on it runs
`LazyObject.__getattribute__` in Python. A relay request read 16 settings that way, 3.4% of a
worker's Python CPU at c=32 (py-spy, bench/RESULTS.md session 11). `conf.settings` is the object
behind the proxy, whose attributes are plain reads. It is looked up again whenever a setting
changes (`override_settings` and pytest-django's `settings` fixture swap that object and send
`setting_changed`), so tests that change settings are seen here too.

Use it as `from oneapi_site import conf` ... `conf.settings.NAME` (not `from oneapi_site.conf import
settings`, which would keep the object of the moment of the import).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as _lazy
from django.core.signals import setting_changed

settings: Any = _lazy  # until the settings are loaded (a module imported before django.setup())


def _bind(**_: object) -> None:
    global settings
    settings = _lazy._wrapped if _lazy.configured else _lazy


_bind()
setting_changed.connect(_bind, dispatch_uid="oneapi_site.conf")
