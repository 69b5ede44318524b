"""Strict readers for environment variables.

Every reader names the variable in its error, so a typo such as ``PORT=30o0`` stops start-up
with a message saying which variable is wrong instead of a traceback deep inside Django.
django-environ parses the URL-shaped values (SQL_DSN, REDIS_CONN_STRING).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DB_SCHEMES = {"postgres", "postgresql", "pgsql", "mysql", "sqlite"}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_database(name: str) -> dict[str, Any] | None:
    """Parse a database URL (postgres://, mysql://, sqlite:///) or return None when unset."""
    value = _raw(name)
    if value is None:
        return None
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme not in _DB_SCHEMES:
        raise ImproperlyConfigured(f"{name} must start with postgres://, mysql:// or sqlite:///, got {scheme or value!r}")
    try:
        return environ.Env.db_url_config(value)
    except Exception as exc:  # django-environ raises several kinds for bad URLs
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from None


def env_networks(name: str) -> list[str]:
    """Comma-separated CIDRs (``10.0.0.0/8, fd00::/8``); a single address is its own network."""
    networks = env_list(name)
    for item in networks:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must list networks such as 10.0.0.0/8, got {item!r}") from None
    return networks
