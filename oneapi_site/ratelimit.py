"""Sliding-window rate limits, shared through Redis when configured, in process memory otherwise.

Limits (SPEC section 6, the original's middleware/rate-limit.go): GLOBAL_API_RATE_LIMIT and
GLOBAL_WEB_RATE_LIMIT per client IP, CRITICAL_RATE_LIMIT per IP for login / sign-up / reset,
GLOBAL_RELAY_RATE_LIMIT per relay key and GLOBAL_CHANNEL_RATE_LIMIT per channel (both enforced
by relay.ratelimit on the hot path). As in the original, a refused request is not counted, so
a client that keeps retrying gets through again as soon as the window has room.

- Local memory: counts per time slot (1/60 of the window), O(1) per hit and bounded memory per
  key whatever the limit. A request is remembered for at most one slot longer than the window
  (the limiter errs on the strict side, never lets more through).
- Redis: one EVALSHA per hit (the relay counts a hot key's hits together and ahead of time,
  relay/ratelimit.py); a sorted set of request times per key, exact, with Redis's own clock so
  replicas with skewed clocks still agree. If Redis fails, the local limiter answers
  (a warning is logged) rather than refusing or letting everything through.

Django views: `RateLimitMiddleware` applies the per-IP limits (and the relay limit to the /v1
routes Django serves). Pages that need the strict limit call `check_critical(request)` or use
the `critical_rate_limit` decorator.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from oneapi_site import conf

logger = logging.getLogger(__name__)

SLOTS = 60
MAX_LOCAL_KEYS = 100_000

# KEYS[1]: the window's sorted set; ARGV: window ms, limit, a unique member, and optionally how
# many hits to count at once (default 1; the relay counts a hot key's hits together, see
# relay/ratelimit.py). As many as fit are counted, each as its own member.
# Returns {hits counted, count after them, ms until the oldest entry leaves the window (0 when
# all were counted)}: for one hit, {1, count, 0} or {0, count, wait}.
SLIDING_WINDOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local want = tonumber(ARGV[4] or '1')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local granted = math.max(math.min(want, limit - count), 0)
if granted > 0 then
  local members = {}
  for i = 1, granted do
    members[2 * i - 1] = now
    members[2 * i] = ARGV[3] .. ':' .. i
  end
  redis.call('ZADD', KEYS[1], unpack(members))
  redis.call('PEXPIRE', KEYS[1], window)
end
if granted == want then
  return {granted, count + granted, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {granted, count + granted, tonumber(oldest[2]) + window - now}
"""


class Decision(NamedTuple):  # a tuple: built on every request, so as cheap as possible
    allowed: bool
    limit: int
    remaining: int
    reset: float  # seconds until the window has room again (0 while it has)

    def headers(self) -> dict[str, str]:
        """RateLimit-* (draft-ietf-httpapi-ratelimit-headers, as the original sends) + Retry-After."""
        reset = max(math.ceil(self.reset), 1) if not self.allowed else 0
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(reset)
        return headers


ALLOWED = Decision(True, 0, 0, 0.0)


class Limit(NamedTuple):
    name: str  # part of the counter's key: "api", "web", "critical", "relay", "channel"
    limit: int  # requests per window; <= 0 disables
    window: float  # seconds


class LocalWindow:
    """In-process sliding window (per worker process: replicas need Redis to share counts)."""

    def __init__(self) -> None:
        self._logs: dict[str, _SlotLog] = {}
        self._lock = threading.Lock()  # Django may call from several threads

    def hit(self, key: str, limit: int, window: float, now: float | None = None) -> Decision:
        width = window / SLOTS
        now = time.monotonic() if now is None else now
        current = int(now // width)
        with self._lock:
            log = self._logs.get(key)
            if log is None:
                if len(self._logs) >= MAX_LOCAL_KEYS:
                    self._sweep(now)
                log = self._logs[key] = _SlotLog(width, window)
            slots = log.slots
            # A slot is forgotten once all of it is older than the window.
            horizon = current - SLOTS
            while slots and slots[0][0] < horizon:
                log.total -= slots.popleft()[1]
            if log.total >= limit:
                return Decision(False, limit, 0, (slots[0][0] + 1) * width + window - now)
            if slots and slots[-1][0] == current:
                slots[-1][1] += 1
            else:
                slots.append([current, 1])
            log.total += 1
            return Decision(True, limit, limit - log.total, 0.0)

    def _sweep(self, now: float) -> None:
        """Drop keys with nothing left in their window; after a flood of distinct keys, start over."""
        for key in [key for key, log in self._logs.items() if log.idle(now)]:
            del self._logs[key]
        if len(self._logs) >= MAX_LOCAL_KEYS:
            self._logs.clear()

    def clear(self) -> None:
        with self._lock:
            self._logs.clear()


class _SlotLog:
    __slots__ = ("slots", "total", "width", "window")

    def __init__(self, width: float, window: float) -> None:
        self.slots: deque[list[int]] = deque()
        self.total = 0
        self.width = width
        self.window = window

    def idle(self, now: float) -> bool:
        return not self.slots or (self.slots[-1][0] + 1) * self.width + self.window <= now


_member = itertools.count()
_pid = os.getpid()  # os.getpid() is a system call each time (glibc stopped caching it)


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def unique_member() -> str:
    return f"{_pid}-{time.time_ns()}-{next(_member)}"


def decision_from_redis(result: Any, limit: int) -> Decision:
    allowed, count, wait_ms = (int(v) for v in result)
    if allowed:
        return Decision(True, limit, max(limit - count, 0), 0.0)
    return Decision(False, limit, 0, max(wait_ms, 0) / 1000)


class SyncRedisWindow:
    """For Django views (sync): redis-py's blocking client."""

    def __init__(self, url: str, password: str | None) -> None:
        import redis

        self._client = redis.Redis.from_url(url, password=password or None, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._client.register_script(SLIDING_WINDOW_LUA)

    def hit(self, key: str, limit: int, window: float) -> Decision:
        result = self._script(keys=[settings.RATE_LIMIT_KEY_PREFIX + key], args=[int(window * 1000), limit, unique_member()])
        return decision_from_redis(result, limit)


_local = LocalWindow()
_sync_redis: SyncRedisWindow | None = None
_redis_warned_at = 0.0


def local_window() -> LocalWindow:
    return _local


def redis_failed(exc: Exception) -> None:
    global _redis_warned_at
    if time.monotonic() - _redis_warned_at > 60:
        _redis_warned_at = time.monotonic()
        logger.warning("rate limit: Redis failed (%s); counting in this process until it is back", exc)


def hit(limit: Limit, identity: str) -> Decision:
    """Count one request of `identity` against `limit` (sync; Django side)."""
    global _sync_redis
    if limit.limit <= 0 or settings.RATE_LIMIT_DISABLED:
        return ALLOWED
    key = f"{limit.name}:{identity}"
    if settings.REDIS_CONN_STRING:
        try:
            if _sync_redis is None:
                _sync_redis = SyncRedisWindow(settings.REDIS_CONN_STRING, settings.REDIS_PASSWORD)
            return _sync_redis.hit(key, limit.limit, limit.window)
        except Exception as exc:  # redis.RedisError, OSError: never fail the request over it
            redis_failed(exc)
    return _local.hit(key, limit.limit, limit.window)


# ----------------------------------------------------------------------------- limits from settings


def api_limit() -> Limit:
    return Limit("api", settings.GLOBAL_API_RATE_LIMIT, settings.GLOBAL_API_RATE_LIMIT_DURATION)


def web_limit() -> Limit:
    return Limit("web", settings.GLOBAL_WEB_RATE_LIMIT, settings.GLOBAL_WEB_RATE_LIMIT_DURATION)


def critical_limit() -> Limit:
    return Limit("critical", settings.CRITICAL_RATE_LIMIT, settings.CRITICAL_RATE_LIMIT_DURATION)


def relay_limit() -> Limit:
    hot = conf.settings  # read per relay request: see oneapi_site/conf.py
    return Limit("relay", hot.GLOBAL_RELAY_RATE_LIMIT, hot.GLOBAL_RELAY_RATE_LIMIT_DURATION)


# ----------------------------------------------------------------------------- client address


def client_ip(header_value: str | None, peer: str | None) -> str | None:
    """The client's address: the socket peer, or TRUSTED_PROXY_HEADER when one is configured.

    Only the header the operator names is trusted (a client can send any header). For a list
    such as X-Forwarded-For, the entry TRUSTED_PROXY_HOPS from the right is the one the
    trusted proxy saw; anything to its left was written by the client.
    """
    if not settings.TRUSTED_PROXY_HEADER or not header_value:
        return peer
    parts = [part.strip() for part in header_value.split(",") if part.strip()]
    if len(parts) < settings.TRUSTED_PROXY_HOPS:
        return peer
    candidate = parts[-settings.TRUSTED_PROXY_HOPS]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


def request_ip(request: HttpRequest) -> str:
    header = settings.TRUSTED_PROXY_HEADER
    value = request.META.get("HTTP_" + header.upper().replace("-", "_")) if header else None
    return client_ip(value, request.META.get("REMOTE_ADDR")) or "unknown"


# ----------------------------------------------------------------------------- Django side

# The original's critical routes (login, registration, verification e-mails, password reset,
# OAuth callbacks): every method counts on these API paths.
CRITICAL_API_PREFIXES = (
    "/api/user/login",
    "/api/user/register",
    "/api/user/reset",
    "/api/reset_password",
    "/api/verification",
    "/api/oauth/",
)
EXEMPT_PREFIXES = ("/healthz", "/livez", "/metrics", "/static/", "/favicon.ico")


def too_many_requests(request: HttpRequest, decision: Decision, what: str) -> HttpResponse:
    """429 in the caller's format: the API envelope, the relay's error shape, or a plain page."""
    message = f"too many requests ({what}): try again in {decision.headers().get('Retry-After', '1')} s"
    path = request.path
    if path.startswith("/api/") or path == "/api":
        response: HttpResponse = JsonResponse({"success": False, "message": message, "data": None}, status=429)
    elif path.startswith("/v1/") or path == "/v1":
        from relay.ratelimit import RateLimited

        from .exception_handler import relay_error_response

        response = relay_error_response(RateLimited(message), request)
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    for name, value in decision.headers().items():
        response[name] = value
    return response


def check_critical(request: HttpRequest) -> HttpResponse | None:
    """For login / sign-up / reset views: None when allowed, else the 429 response to return."""
    decision = hit(critical_limit(), request_ip(request))
    return None if decision.allowed else too_many_requests(request, decision, "sign-in attempts")


def critical_rate_limit(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorator for page views: POSTs (the attempts) count against CRITICAL_RATE_LIMIT."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            refused = check_critical(request)
            if refused is not None:
                return refused
        return view(request, *args, **kwargs)

    return wrapped


def _relay_identity(request: HttpRequest) -> str | None:
    from relay.keyauth import extract_key

    headers = {
        "authorization": request.META.get("HTTP_AUTHORIZATION", ""),
        "x-api-key": request.META.get("HTTP_X_API_KEY", ""),
        "api-key": request.META.get("HTTP_API_KEY", ""),
    }
    presented = extract_key(headers)
    return presented.digest if presented else None


class RateLimitMiddleware:
    """Per-IP limits for /api and pages, the per-key limit for the /v1 routes Django serves."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.RATE_LIMIT_DISABLED:
            return self.get_response(request)
        refused = self._check(request)
        return refused if refused is not None else self.get_response(request)

    def _check(self, request: HttpRequest) -> HttpResponse | None:
        path = request.path
        if path.startswith(EXEMPT_PREFIXES):
            return None
        if path.startswith("/v1/") or path == "/v1":
            identity = _relay_identity(request)
            if identity is None:
                return None  # refused by authentication anyway
            decision = hit(relay_limit(), identity)
            return None if decision.allowed else too_many_requests(request, decision, "requests with this key")
        ip = request_ip(request)
        if path.startswith("/api/") or path == "/api":
            if path.startswith(CRITICAL_API_PREFIXES):
                decision = hit(critical_limit(), ip)
                if not decision.allowed:
                    return too_many_requests(request, decision, "sign-in attempts")
            decision = hit(api_limit(), ip)
            return None if decision.allowed else too_many_requests(request, decision, "API requests from your address")
        decision = hit(web_limit(), ip)
        return None if decision.allowed else too_many_requests(request, decision, "page requests from your address")
