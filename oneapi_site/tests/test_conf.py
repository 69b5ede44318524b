"""oneapi_site.conf: the settings object behind django.conf.settings, following overrides."""

from __future__ import annotations

from django.conf import LazySettings
from django.test import override_settings

from oneapi_site import conf


def test_reads_are_plain_and_follow_every_override(settings) -> None:  # type: ignore[no-untyped-def]
    assert not isinstance(conf.settings, LazySettings)  # the object behind the proxy, no Python call per read
    assert conf.settings.TOKEN_KEY_PREFIX == settings.TOKEN_KEY_PREFIX
    with override_settings(TOKEN_KEY_PREFIX="zz-", GLOBAL_RELAY_RATE_LIMIT=7):
        assert (conf.settings.TOKEN_KEY_PREFIX, conf.settings.GLOBAL_RELAY_RATE_LIMIT) == ("zz-", 7)
        assert conf.settings.DEBUG == settings.DEBUG  # the rest still reads through
    assert conf.settings.TOKEN_KEY_PREFIX != "zz-"
    settings.RELAY_TRACE_ENABLED = False  # pytest-django's fixture
    assert conf.settings.RELAY_TRACE_ENABLED is False
