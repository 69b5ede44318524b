"""OAuth access tokens for Vertex AI from a channel's Google credentials, cached per channel.

Vertex AI takes `Authorization: Bearer <access token>`
(https://cloud.google.com/vertex-ai/docs/authentication). A service-account key is exchanged
for an hour-long token with the JWT-bearer grant (RFC 7523) at the key's `token_uri`
(https://developers.google.com/identity/protocols/oauth2/service-account#httprest); google-auth
builds and signs that JWT (`service_account.Credentials`). Its refresh is blocking HTTP, so it
runs in a worker thread, once per credentials however many requests wait for it, and only when
the token is missing or about to expire (google-auth's `valid` already counts a margin of a few
minutes before `expiry`).

No Django here: the caller passes the outbound proxy.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import google.auth.exceptions
import google.auth.transport
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

__all__ = ["SCOPES", "CredentialsError", "TokenCache", "UrllibRequest", "credentials_info", "project_id"]

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
TOKEN_TIMEOUT = 30.0  # seconds for one call to the token endpoint


class CredentialsError(ValueError):
    """The channel's credentials are missing, malformed, or refused by the token endpoint."""


def credentials_info(key: str, config: dict[str, object]) -> dict[str, Any]:
    """The credentials JSON: the channel key, or config `vertex_ai_adc` (where the original
    one-api kept it), as a JSON object or a string holding one."""
    for source in (key, config.get("vertex_ai_adc")):
        if isinstance(source, dict):
            return dict(source)
        if isinstance(source, str) and source.strip().startswith("{"):
            try:
                info = json.loads(source)
            except ValueError:
                raise CredentialsError("the Vertex AI credentials are not valid JSON") from None
            if isinstance(info, dict):
                return info
    raise CredentialsError("a Vertex AI channel needs a service-account JSON key (as the key or config vertex_ai_adc)")


def project_id(info: dict[str, Any], config: dict[str, object]) -> str:
    configured = config.get("vertex_ai_project_id")
    if isinstance(configured, str) and configured.strip():
        return configured.strip()
    for name in ("project_id", "quota_project_id"):  # service account / authorized user
        value = info.get(name)
        if isinstance(value, str) and value:
            return value
    raise CredentialsError("no Vertex AI project: set config vertex_ai_project_id")


def _build_credentials(info: dict[str, Any]) -> Any:
    """google-auth credentials for a service account or an authorized user (the JSON that
    `gcloud auth application-default login` writes). Other kinds (external accounts) can make
    google-auth read local files or fetch URLs: not accepted from a channel setting."""
    kind = info.get("type", "service_account")
    try:
        if kind == "service_account":
            info = {**info}
            info.setdefault("token_uri", DEFAULT_TOKEN_URI)
            return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        if kind == "authorized_user":
            return user_credentials.Credentials.from_authorized_user_info(info, scopes=SCOPES)
    except (ValueError, KeyError, TypeError) as exc:  # missing fields, a key that does not parse
        raise CredentialsError(f"the Vertex AI credentials are not usable: {exc}") from None
    raise CredentialsError(f"Vertex AI credentials of type {kind!r} are not supported (use a service-account key)")


class _Response(google.auth.transport.Response):
    def __init__(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self._status, self._headers, self._data = status, headers, data

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> dict[str, str]:
        return self._headers

    @property
    def data(self) -> bytes:
        return self._data


class UrllibRequest(google.auth.transport.Request):
    """google-auth's transport over the standard library, so neither `requests` nor `urllib3`
    is a dependency; the only call it makes is the POST to the token endpoint. Environment
    proxies are ignored, as the relay's own session ignores them (`trust_env=False`): `proxy`
    is the relay's configured one."""

    def __init__(self, proxy: str | None = None) -> None:
        handler = urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {})
        self._opener = urllib.request.build_opener(handler)

    def __call__(self, url: str, method: str = "GET", body: bytes | None = None, headers: Any = None,
                 timeout: float | None = None, **kwargs: Any) -> _Response:
        request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
        try:
            with self._opener.open(request, timeout=timeout or TOKEN_TIMEOUT) as response:
                return _Response(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:  # an answer all the same: google-auth reads it
            with exc:
                return _Response(exc.code, dict(exc.headers or {}), exc.read())
        except (OSError, ValueError) as exc:  # URLError, timeouts, resets, a bad URL
            raise google.auth.exceptions.TransportError(f"token endpoint unreachable: {exc}") from exc


@dataclass(slots=True)
class _Entry:
    info: dict[str, Any]
    credentials: Any = None  # built on first refresh, in the worker thread (key parsing costs ms)
    failure: str | None = None
    failed_until: float = 0.0
    lock: asyncio.Lock | None = None
    loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    def lock_for_running_loop(self) -> asyncio.Lock:
        # An asyncio.Lock belongs to one event loop; tests (and async_to_sync) run several.
        loop = asyncio.get_running_loop()
        if self.lock is None or self.loop is not loop:
            self.lock, self.loop = asyncio.Lock(), loop
        return self.lock

    def token_if_valid(self) -> str | None:
        credentials = self.credentials
        return str(credentials.token) if credentials is not None and credentials.valid else None

    def refresh(self, proxy: str | None) -> None:
        """Blocking: build the credentials if needed and fetch a token (in a worker thread)."""
        if self.credentials is None:
            self.credentials = _build_credentials(self.info)
        try:
            self.credentials.refresh(UrllibRequest(proxy))
        except google.auth.exceptions.GoogleAuthError as exc:
            raise CredentialsError(f"could not get a Vertex AI access token: {exc}") from None


class TokenCache:
    """Credentials per (channel id, hash of its credentials JSON): a changed key gets new
    credentials, and the old entry of that channel is dropped. A failed refresh is remembered
    for FAILURE_TTL seconds, so requests queued behind it (and the next ones) fail at once
    instead of each waiting for the token endpoint again; the relay tries another channel."""

    FAILURE_TTL = 10.0

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], _Entry] = {}

    def _entry(self, channel_id: int, info: dict[str, Any]) -> _Entry:
        digest = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
        entry = self._entries.get((channel_id, digest))
        if entry is None:
            for stale in [k for k in self._entries if k[0] == channel_id]:
                del self._entries[stale]
            entry = self._entries[(channel_id, digest)] = _Entry(info)
        return entry

    async def token(self, channel_id: int, info: dict[str, Any], *, proxy: str | None = None) -> str:
        """A valid access token, fetched (in a thread) only when the cached one is missing or
        expiring; concurrent callers wait for the one refresh. Raises CredentialsError."""
        entry = self._entry(channel_id, info)
        token = entry.token_if_valid()
        if token is not None:
            return token
        async with entry.lock_for_running_loop():
            token = entry.token_if_valid()  # another caller may have refreshed while this one waited
            if token is not None:
                return token
            if entry.failure is not None and time.monotonic() < entry.failed_until:
                raise CredentialsError(entry.failure)
            try:
                await asyncio.to_thread(entry.refresh, proxy)
            except CredentialsError as exc:
                entry.failure, entry.failed_until = str(exc), time.monotonic() + self.FAILURE_TTL
                raise
            entry.failure = None
            token = entry.token_if_valid()
        if token is None:
            raise CredentialsError("the token endpoint answered without a usable access token")
        return token

    def clear(self) -> None:
        self._entries.clear()
