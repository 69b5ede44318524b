"""Minimal ASGI request/response plumbing for the lean relay app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import metrics
from .errors import PayloadTooLarge

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DRAIN_LIMIT = 64 * 1024 * 1024


def header_map(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}


async def read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length")
    too_large = bool(declared and declared.isdigit() and int(declared) > limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            too_large = True
        if not too_large:
            chunks.append(body)
        elif size > limit + DRAIN_LIMIT:
            break  # stop reading a body this large; the server closes the connection
        if not message.get("more_body", False):
            break
    if too_large:
        # The body was read (and dropped) so that the client gets to see this answer instead
        # of a broken pipe while it is still sending.
        raise PayloadTooLarge(f"the request body is larger than the {limit // (1024 * 1024) or 1} MB limit")
    return b"".join(chunks)


class ClientGone(Exception):
    """The client closed the connection."""


class Responder:
    """Sends one HTTP response; remembers whether headers went out (then errors go in-band)."""

    def __init__(self, send: Send, receive: Receive, request_id: str) -> None:
        self._send = send
        self._receive = receive
        self.request_id = request_id
        self.started = False
        self.finished = False
        self.status = 0
        self.first_byte_at = 0.0  # time.monotonic() when the response began (traces, metrics)
        self.stream_opened = False
        self.headers: dict[str, str] = {}  # extra response headers decided on the way
        self._disconnect: asyncio.Future[Message] | None = None

    def watch_disconnect(self) -> None:
        """After the body is read, the next receive() only returns when the client leaves."""
        self._disconnect = asyncio.ensure_future(self._receive())

    @property
    def client_gone(self) -> bool:
        return self._disconnect is not None and self._disconnect.done()

    def close(self) -> None:
        if self._disconnect is not None and not self._disconnect.done():
            self._disconnect.cancel()

    def _headers(self, content_type: bytes, extra: dict[str, str] | None) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", content_type), (b"x-oneapi-request-id", self.request_id.encode())]
        for name, value in {**self.headers, **(extra or {})}.items():
            headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        return headers

    async def send_json(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        headers = self._headers(b"application/json", extra)
        headers.append((b"content-length", str(len(body)).encode()))
        self.started, self.status, self.first_byte_at = True, status, time.monotonic()
        await self._send({"type": "http.response.start", "status": status, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})
        self.finished = True

    async def start_stream(self, extra: dict[str, str] | None = None) -> None:
        headers = self._headers(b"text/event-stream; charset=utf-8", extra)
        headers.append((b"cache-control", b"no-cache"))
        headers.append((b"x-accel-buffering", b"no"))  # tell nginx-style proxies not to buffer
        self.started, self.status, self.first_byte_at, self.stream_opened = True, 200, time.monotonic(), True
        metrics.stream_opened()
        await self._send({"type": "http.response.start", "status": 200, "headers": headers})

    async def write(self, data: bytes) -> None:
        if data:
            await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self, data: bytes = b"") -> None:
        if not self.finished:
            self.finished = True
            await self._send({"type": "http.response.body", "body": data})
