"""Settings for One API for Django: one file, read from the environment.

Variable names are the original One API's (SQL_DSN, SQLITE_PATH, REDIS_CONN_STRING, PORT, ...)
so that a deployment can move over unchanged. `.env.example` lists every one of them.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_database, env_float, env_int, env_list, env_networks, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
if (BASE_DIR / ".env").is_file():
    # Values already in the environment win over the file.
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "data"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
TESTING = "pytest" in sys.modules or env_bool("ONEAPI_TESTING", False)

# ---------------------------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------------------------


def _session_secret() -> str:
    """SESSION_SECRET, or a random one kept in DATA_DIR so restarts keep sessions and keys.

    The original generated a random secret per start, which silently broke sessions and every
    encrypted secret on restart. Replicas must share SESSION_SECRET (it also derives the key
    that encrypts upstream credentials at rest).
    """
    configured = env_str("SESSION_SECRET")
    if configured:
        return configured
    path = DATA_DIR / "session_secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _session_secret()
DEBUG = env_bool("DEBUG", False)
DEBUG_SQL = env_bool("DEBUG_SQL", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["*"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
PORT = env_int("PORT", 3000, minimum=1)
FRONTEND_BASE_URL = env_str("FRONTEND_BASE_URL")
SHUTDOWN_TIMEOUT_SEC = env_int("SHUTDOWN_TIMEOUT_SEC", 30, minimum=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "oneapi_site",
    "accounts",
    "channels_app",
    "billing",
    "relay",
    "mcp_app",
    "drf_spectacular",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and the pages' static files in every deployment (no CDN, no nginx needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "oneapi_site.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "oneapi_site.urls"
WSGI_APPLICATION = "oneapi_site.wsgi.application"
ASGI_APPLICATION = "oneapi_site.asgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# ---------------------------------------------------------------------------------------------
# Database: SQL_DSN (postgres://, mysql://), else SQLite at SQLITE_PATH
# ---------------------------------------------------------------------------------------------

SQLITE_PATH = Path(env_str("SQLITE_PATH", str(DATA_DIR / "one-api.db"))).resolve()
SQLITE_BUSY_TIMEOUT_MS = env_int("SQLITE_BUSY_TIMEOUT", 10000, minimum=0)
SQL_MAX_OPEN_CONNS = env_int("SQL_MAX_OPEN_CONNS", 20, minimum=1)
SQL_MAX_IDLE_CONNS = env_int("SQL_MAX_IDLE_CONNS", 4, minimum=0)
SQL_MAX_LIFETIME = env_int("SQL_MAX_LIFETIME", 300, minimum=1)

_dsn = env_database("SQL_DSN")
if _dsn is None:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(SQLITE_PATH),
            "OPTIONS": {
                # WAL lets the relay's writer and the admin's readers work side by side;
                # IMMEDIATE transactions take the write lock up front so they never deadlock.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                "transaction_mode": "IMMEDIATE",
            },
            # A file (not :memory:) so that the live gateway process in end-to-end tests can open
            # it; one per test run so that parallel runs never share it.
            "TEST": {"NAME": str(DATA_DIR / f"test-one-api-{os.getpid()}.db")},
        }
    }
else:
    DATABASES = {"default": _dsn}
    if _dsn["ENGINE"] == "django.db.backends.postgresql":
        # Django's pool keeps connections warm; without it every request opens one (~37 ms).
        DATABASES["default"]["OPTIONS"] = {
            "pool": {
                "min_size": min(SQL_MAX_IDLE_CONNS, SQL_MAX_OPEN_CONNS),
                "max_size": SQL_MAX_OPEN_CONNS,
                "max_lifetime": SQL_MAX_LIFETIME,
            }
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    elif _dsn["ENGINE"] == "django.db.backends.mysql":
        # PyMySQL (pure Python) stands in for mysqlclient, which needs C headers to build.
        import pymysql

        pymysql.install_as_MySQLdb()
        DATABASES["default"]["OPTIONS"] = {"charset": "utf8mb4"}
        DATABASES["default"]["CONN_MAX_AGE"] = SQL_MAX_LIFETIME

# ---------------------------------------------------------------------------------------------
# Cache and Redis
# ---------------------------------------------------------------------------------------------

REDIS_CONN_STRING = env_str("REDIS_CONN_STRING")
REDIS_PASSWORD = env_str("REDIS_PASSWORD")
if REDIS_CONN_STRING:
    if not REDIS_CONN_STRING.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("REDIS_CONN_STRING must start with redis://, rediss:// or unix://")
    _redis_options: dict[str, object] = {"CLIENT_CLASS": "django_redis.client.DefaultClient"}
    if REDIS_PASSWORD:
        _redis_options["PASSWORD"] = REDIS_PASSWORD
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_CONN_STRING,
            "OPTIONS": _redis_options,
            "KEY_PREFIX": "oneapi",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# ---------------------------------------------------------------------------------------------
# Sessions, cookies, security
# ---------------------------------------------------------------------------------------------

COOKIE_MAXAGE_HOURS = env_int("COOKIE_MAXAGE_HOURS", 168, minimum=1)
SESSION_COOKIE_AGE = COOKIE_MAXAGE_HOURS * 3600
SESSION_COOKIE_NAME = "session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
ENABLE_COOKIE_SECURE = env_bool("ENABLE_COOKIE_SECURE", False)
SESSION_COOKIE_SECURE = ENABLE_COOKIE_SECURE
CSRF_COOKIE_SECURE = ENABLE_COOKIE_SECURE
if ENABLE_COOKIE_SECURE:
    # Behind a TLS-terminating proxy: trust its X-Forwarded-Proto to know the request was HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    # The original stores bcrypt hashes; imported users keep logging in with them.
    "django.contrib.auth.hashers.BCryptPasswordHasher",
]
if TESTING:
    PASSWORD_HASHERS.insert(0, "django.contrib.auth.hashers.MD5PasswordHasher")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

INITIAL_ROOT_PASSWORD = env_str("INITIAL_ROOT_PASSWORD")
INITIAL_ROOT_TOKEN = env_str("INITIAL_ROOT_TOKEN")
INITIAL_ROOT_ACCESS_TOKEN = env_str("INITIAL_ROOT_ACCESS_TOKEN")
TOKEN_KEY_PREFIX = env_str("TOKEN_KEY_PREFIX", "sk-")

# ---------------------------------------------------------------------------------------------
# Internationalisation and static files (server time is UTC, as in the original)
# ---------------------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the apps' static folders when collectstatic has not run (tests, dev).
WHITENOISE_USE_FINDERS = True

# ---------------------------------------------------------------------------------------------
# REST framework (management API and the /v1 routes that are not hot)
# ---------------------------------------------------------------------------------------------

MAX_ITEMS_PER_PAGE = env_int("MAX_ITEMS_PER_PAGE", 100, minimum=1)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.AccessTokenAuthentication",
        "accounts.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "oneapi_site.exception_handler.envelope_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

# ---------------------------------------------------------------------------------------------
# Relay
# ---------------------------------------------------------------------------------------------

RELAY_TIMEOUT = env_float("RELAY_TIMEOUT", 0, minimum=0)  # seconds; 0 = no overall limit
RELAY_CONNECT_TIMEOUT = env_float("RELAY_CONNECT_TIMEOUT", 10, minimum=0.1)
IDLE_TIMEOUT = env_float("IDLE_TIMEOUT", 120, minimum=0)  # seconds a stream may stay silent
RELAY_PROXY = env_str("RELAY_PROXY")
RELAY_MAX_BODY_MB = env_float("RELAY_MAX_BODY_MB", 32, minimum=0.001)
# Image and file URLs that callers send, fetched for upstreams that need them inline (relay.media),
# through the SSRF guard (relay.ssrf): only public addresses unless allowed here.
USER_CONTENT_REQUEST_TIMEOUT = env_float("USER_CONTENT_REQUEST_TIMEOUT", 30, minimum=0.1)  # seconds per URL
USER_CONTENT_REQUEST_PROXY = env_str("USER_CONTENT_REQUEST_PROXY")
MAX_INLINE_IMAGE_SIZE_MB = env_float("MAX_INLINE_IMAGE_SIZE_MB", 16, minimum=0.001)
USER_CONTENT_ALLOWED_NETWORKS = env_networks("USER_CONTENT_ALLOWED_NETWORKS")
USER_CONTENT_ALLOWED_HOSTS = [h.lower() for h in env_list("USER_CONTENT_ALLOWED_HOSTS")]
ENFORCE_INCLUDE_USAGE = env_bool("ENFORCE_INCLUDE_USAGE", True)
DEFAULT_MAX_TOKEN = env_int("DEFAULT_MAX_TOKEN", 2048, minimum=1)
SYNC_FREQUENCY = env_int("SYNC_FREQUENCY", 120, minimum=1)
# How often each worker checks whether cached tables changed (a single cheap SELECT).
CACHE_CHANGE_POLL_SECONDS = env_float("CACHE_CHANGE_POLL_SECONDS", 1.0, minimum=0.05)
# Accepted for compatibility: the relay always keeps in-memory copies (refreshed on change).
MEMORY_CACHE_ENABLED = env_bool("MEMORY_CACHE_ENABLED", True)
CHANNEL_SUSPEND_SECONDS_FOR_429 = env_int("CHANNEL_SUSPEND_SECONDS_FOR_429", 60, minimum=0)
CHANNEL_TEST_FREQUENCY = env_int("CHANNEL_TEST_FREQUENCY", 0, minimum=0)  # seconds; 0 = off
TEST_PROMPT = env_str("TEST_PROMPT", "2 + 2 = ?")
TEST_MAX_TOKENS = env_int("TEST_MAX_TOKENS", 16, minimum=1)

# ---------------------------------------------------------------------------------------------
# Celery: Redis when configured, else a filesystem broker that needs no server
# ---------------------------------------------------------------------------------------------

CELERY_BROKER_DIR = DATA_DIR / "celery-broker"
if REDIS_CONN_STRING:
    CELERY_BROKER_URL = REDIS_CONN_STRING
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
else:
    for _sub in ("in", "processed"):
        (CELERY_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # The worker reads what producers write: both folders are the same one.
        "data_folder_in": str(CELERY_BROKER_DIR / "in"),
        "data_folder_out": str(CELERY_BROKER_DIR / "in"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "release-stale-holds": {
        "task": "billing.tasks.release_stale_holds",
        "schedule": 300.0,
        "options": {"expires": 240},
    },
}
if CHANNEL_TEST_FREQUENCY:
    CELERY_BEAT_SCHEDULE["test-all-channels"] = {
        "task": "channels_app.tasks.test_all_channels",
        "schedule": float(CHANNEL_TEST_FREQUENCY),
        "options": {"expires": max(CHANNEL_TEST_FREQUENCY - 1, 1)},
    }

# ---------------------------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django.db.backends": {"level": "DEBUG" if DEBUG_SQL else "INFO"},
    },
}
OPENROUTER_PROVIDER_SORT = env_str("OPENROUTER_PROVIDER_SORT")  # price | throughput | latency
if OPENROUTER_PROVIDER_SORT not in ("", "price", "throughput", "latency"):
    raise ImproperlyConfigured("OPENROUTER_PROVIDER_SORT must be price, throughput or latency")
