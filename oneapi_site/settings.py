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
from .schedule import Periodic, beat_schedule

BASE_DIR = Path(__file__).resolve().parent.parent
if (BASE_DIR / ".env").is_file():
    # Values already in the environment win over the file.
    # `parse_comments`: .env.example documents each value with a trailing "# ..." comment.
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False, parse_comments=True)
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
    # Sign-up, log-in, password reset, e-mail verification and OAuth of the web pages.
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.openid_connect",
    "mcp_app",
    "drf_spectacular",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and the pages' static files in every deployment (no CDN, no nginx needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "oneapi_site.middleware.RequestIdMiddleware",
    # Per-IP limits for /api and pages before any session or database work (oneapi_site.ratelimit).
    "oneapi_site.ratelimit.RateLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.ratelimit.CriticalRateLimitMiddleware",
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
                "accounts.context_processors.site",
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
# PostgreSQL: the relay's accounting commits without waiting for the WAL flush (like SQLite's
# synchronous=NORMAL): a killed gateway loses nothing, a PostgreSQL crash the last ~0.6 s.
# Every request updates the same key and user rows, so waiting for each flush serialises them.
SQL_RELAY_SYNCHRONOUS_COMMIT = env_bool("SQL_RELAY_SYNCHRONOUS_COMMIT", False)

_dsn = env_database("SQL_DSN")
if _dsn is None:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(SQLITE_PATH),
            "OPTIONS": {
                # WAL lets the relay's writer and the admin's readers work side by side;
                # IMMEDIATE transactions take the write lock up front so they never deadlock.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;",
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
# Web pages' accounts (django-allauth; rules and OAuth apps come from the options, see
# accounts/adapters.py) and e-mail: SMTP when SMTP_SERVER is set, files in EMAIL_FILE_PATH when
# that is set, else printed to the console (the server log).
# ---------------------------------------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.signup.InviteSignupForm"
ACCOUNT_FORMS = {"login": "accounts.allauth_views.PasswordLoginForm"}
ACCOUNT_USERNAME_VALIDATORS = "accounts.signup.username_validators"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"  # applied per user by accounts.adapters (EmailVerificationEnabled)
ACCOUNT_CONFIRM_EMAIL_ON_GET = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""
ACCOUNT_USERNAME_MIN_LENGTH = 3
ACCOUNT_SESSION_REMEMBER = True
# One strict limiter for these flows (oneapi_site.ratelimit via accounts/ratelimit.py), not two.
ACCOUNT_RATE_LIMITS = False
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"  # the provider vouches for its users
SOCIALACCOUNT_LOGIN_ON_GET = False
CRITICAL_RATE_LIMIT = env_int("CRITICAL_RATE_LIMIT", 20, minimum=0)  # per IP; 0 = off
CRITICAL_RATE_LIMIT_DURATION = env_int("CRITICAL_RATE_LIMIT_DURATION", 1200, minimum=1)  # seconds

SMTP_SERVER = env_str("SMTP_SERVER")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH")
if SMTP_SERVER:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = SMTP_SERVER
    EMAIL_PORT = env_int("SMTP_PORT", 587, minimum=1)
    EMAIL_HOST_USER = env_str("SMTP_ACCOUNT")
    EMAIL_HOST_PASSWORD = env_str("SMTP_TOKEN")
    # Port 465 speaks TLS from the first byte; the others upgrade with STARTTLS.
    EMAIL_USE_SSL = EMAIL_PORT == 465
    EMAIL_USE_TLS = not EMAIL_USE_SSL and env_bool("SMTP_STARTTLS", True)
    EMAIL_TIMEOUT = 20
elif EMAIL_FILE_PATH:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("SMTP_FROM") or env_str("SMTP_ACCOUNT") or "one-api@localhost"

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
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# /openapi.json: drf-spectacular describes the DRF views; oneapi_site.openapi adds the relay,
# sandbox, discovery and MCP routes (not DRF views) by hand.
SPECTACULAR_SETTINGS = {
    "TITLE": "One API for Django",
    "DESCRIPTION": "One endpoint in front of many AI providers: OpenAI Chat Completions, OpenAI Responses, "
    "Claude Messages and MCP, with the original One API's management API.",
    "VERSION": "0.1.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "DISABLE_ERRORS_AND_WARNINGS": True,
    "PREPROCESSING_HOOKS": ["oneapi_site.openapi.keep_documented_endpoints"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "oneapi_site.openapi.complete_document"],
}

# ---------------------------------------------------------------------------------------------
# Relay
# ---------------------------------------------------------------------------------------------

RELAY_TIMEOUT = env_float("RELAY_TIMEOUT", 0, minimum=0)  # seconds; 0 = no overall limit
RELAY_CONNECT_TIMEOUT = env_float("RELAY_CONNECT_TIMEOUT", 10, minimum=0.1)
IDLE_TIMEOUT = env_float("IDLE_TIMEOUT", 120, minimum=0)  # seconds a stream may stay silent
RELAY_PROXY = env_str("RELAY_PROXY")
RELAY_MAX_BODY_MB = env_float("RELAY_MAX_BODY_MB", 32, minimum=0.001)
# A well-funded key's quota hold runs while its request goes upstream, not before (relay.billing_flow).
RELAY_HOLD_OVERLAP = env_bool("RELAY_HOLD_OVERLAP", True)
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
OPENROUTER_PROVIDER_SORT = env_str("OPENROUTER_PROVIDER_SORT")  # price | throughput | latency
if OPENROUTER_PROVIDER_SORT not in ("", "price", "throughput", "latency"):
    raise ImproperlyConfigured("OPENROUTER_PROVIDER_SORT must be price, throughput or latency")
CHANNEL_SUSPEND_SECONDS_FOR_429 = env_int("CHANNEL_SUSPEND_SECONDS_FOR_429", 60, minimum=0)
CHANNEL_SUSPEND_SECONDS_FOR_5XX = env_int("CHANNEL_SUSPEND_SECONDS_FOR_5XX", 30, minimum=0)
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
        # Broadcast (remote control) tables; kombu's default is "control" in the working directory.
        "control_folder": str(CELERY_BROKER_DIR / "control"),
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
    "sync-mcp-servers": {
        # Each MCP server has its own interval; this only checks which ones are due.
        "task": "mcp_app.tasks.sync_due_mcp_servers",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
}
# Tasks run in the caller while testing (the live-worker tests start real workers instead).
CELERY_TASK_ALWAYS_EAGER = TESTING
CELERY_TASK_EAGER_PROPAGATES = TESTING
# A queue name of its own lets several deployments (or test runs) share one Redis.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_DEFAULT_QUEUE", "celery")
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # channel tests can be slow: do not hoard them
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
LOG_RETENTION_DAYS = env_int("LOG_RETENTION_DAYS", 0, minimum=0)  # database `logs` rows; 0 = keep
# The original's documentation spells it TRACE_RENTATION_DAYS; both names work.
TRACE_RETENTION_DAYS = env_int("TRACE_RETENTION_DAYS", env_int("TRACE_RENTATION_DAYS", 30, minimum=0), minimum=0)
RETENTION_BATCH_SIZE = env_int("RETENTION_BATCH_SIZE", 1000, minimum=1)  # rows per DELETE
BATCH_UPDATE_ENABLED = env_bool("BATCH_UPDATE_ENABLED", False)  # billing/batch.py
BATCH_UPDATE_INTERVAL = env_int("BATCH_UPDATE_INTERVAL", 5, minimum=1)
# Each entry: the default period (seconds or a UTC crontab), overridden by its BEAT_* variable.
CELERY_BEAT_SCHEDULE.update(
    beat_schedule(
        [
            Periodic(
                "test-all-channels", "channels_app.tasks.test_all_channels", "BEAT_TEST_CHANNELS",
                str(CHANNEL_TEST_FREQUENCY), enabled=CHANNEL_TEST_FREQUENCY > 0,
            ),
            Periodic(
                "purge-old-logs", "billing.tasks.purge_old_logs", "BEAT_PURGE_LOGS", "17 3 * * *",
                enabled=LOG_RETENTION_DAYS > 0,
            ),
            Periodic(
                "purge-old-traces", "relay.tasks.purge_old_traces", "BEAT_PURGE_TRACES", "37 3 * * *",
                enabled=TRACE_RETENTION_DAYS > 0,
            ),
            Periodic(
                "refresh-channel-balances", "channels_app.tasks.refresh_all_balances", "BEAT_REFRESH_BALANCES",
                "7 */6 * * *",
            ),
            # Today and yesterday, recomputed each time: late settlements land in the right day.
            Periodic("rollup-usage", "billing.tasks.rollup_recent_usage", "BEAT_ROLLUP_USAGE", "*/15 * * * *"),
        ]
    )
)

# ---------------------------------------------------------------------------------------------
# Operations: rate limits, client address, metrics, traces, log push
# ---------------------------------------------------------------------------------------------

# Sliding windows per client IP (API, pages), per relay key and per channel; shared through
# Redis when REDIS_CONN_STRING is set. A limit of 0 turns that one off. Off while testing
# unless a test turns them on (the whole suite comes from 127.0.0.1).
RATE_LIMIT_DISABLED = env_bool("RATE_LIMIT_DISABLED", TESTING)
GLOBAL_API_RATE_LIMIT = env_int("GLOBAL_API_RATE_LIMIT", 480, minimum=0)
GLOBAL_API_RATE_LIMIT_DURATION = env_int("GLOBAL_API_RATE_LIMIT_DURATION", 180, minimum=1)
GLOBAL_WEB_RATE_LIMIT = env_int("GLOBAL_WEB_RATE_LIMIT", 240, minimum=0)
GLOBAL_WEB_RATE_LIMIT_DURATION = env_int("GLOBAL_WEB_RATE_LIMIT_DURATION", 180, minimum=1)
GLOBAL_RELAY_RATE_LIMIT = env_int("GLOBAL_RELAY_RATE_LIMIT", 480, minimum=0)
GLOBAL_RELAY_RATE_LIMIT_DURATION = env_int("GLOBAL_RELAY_RATE_LIMIT_DURATION", 180, minimum=1)
# The original's fork takes true/false here (true: channels that set a limit are limited); a
# number also sets the limit of every channel that sets none (a channel's config "rate_limit").
_channel_limit = env_str("GLOBAL_CHANNEL_RATE_LIMIT", "false").lower()
if _channel_limit in {"true", "yes", "on"}:
    CHANNEL_RATE_LIMIT_ENABLED, CHANNEL_RATE_LIMIT_DEFAULT = True, 0
elif _channel_limit in {"false", "no", "off"}:
    CHANNEL_RATE_LIMIT_ENABLED, CHANNEL_RATE_LIMIT_DEFAULT = False, 0
else:
    CHANNEL_RATE_LIMIT_DEFAULT = env_int("GLOBAL_CHANNEL_RATE_LIMIT", 0, minimum=0)
    CHANNEL_RATE_LIMIT_ENABLED = CHANNEL_RATE_LIMIT_DEFAULT > 0
GLOBAL_CHANNEL_RATE_LIMIT_DURATION = env_int("GLOBAL_CHANNEL_RATE_LIMIT_DURATION", 180, minimum=1)
# The client address comes from the socket unless a proxy in front is trusted to set this
# header (e.g. X-Forwarded-For, X-Real-IP, CF-Connecting-IP); of a comma list, the entry
# TRUSTED_PROXY_HOPS from the right is used (what the nearest trusted proxy saw).
# Prefix of the counters in Redis: two deployments sharing one Redis need different ones.
RATE_LIMIT_KEY_PREFIX = env_str("RATE_LIMIT_KEY_PREFIX", "oneapi:rl:")
TRUSTED_PROXY_HEADER = env_str("TRUSTED_PROXY_HEADER")
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 1, minimum=1)

# /metrics for Prometheus; answers 403 until METRICS_TOKEN is set. With several web worker
# processes, PROMETHEUS_MULTIPROC_DIR (an empty directory, wiped at each start; `runall` and
# the container do it) makes every process's numbers add up.
ENABLE_PROMETHEUS_METRICS = env_bool("ENABLE_PROMETHEUS_METRICS", True)
METRICS_TOKEN = env_str("METRICS_TOKEN")
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
# One `traces` row per relayed request (timings), written in batches off the request path.
RELAY_TRACE_ENABLED = env_bool("RELAY_TRACE_ENABLED", True)
# Error events (ERROR log records) pushed to a webhook; LOG_PUSH_TYPE picks the body's shape
# (slack, discord, or a generic JSON event for anything else) and is sent along.
LOG_PUSH_API = env_str("LOG_PUSH_API")
LOG_PUSH_TYPE = env_str("LOG_PUSH_TYPE")
LOG_PUSH_TOKEN = env_str("LOG_PUSH_TOKEN")
# Who hears about channels disabled or re-enabled automatically, besides root users with an e-mail.
OPERATOR_EMAILS = env_list("OPERATOR_EMAILS")

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
if LOG_PUSH_API:
    # Error events leave through a bounded queue and a background thread (oneapi_site.logpush).
    LOGGING["handlers"]["push"] = {"class": "oneapi_site.logpush.LogPushHandler", "level": "ERROR"}  # type: ignore[index]
    LOGGING["root"]["handlers"].append("push")  # type: ignore[index]
