"""The relay's HTTP/1.1 client for upstream calls: keep-alive connections, httptools' parser.

Why not aiohttp's ClientSession here: one POST through it costs ~160-210 us of CPU on this
2-core machine against ~45-55 us for the same exchange over an asyncio protocol with httptools
(bench/RESULTS.md, session 11: 5,000 sequential calls to nginx, uvloop). At c=32 that difference
was about a quarter of a worker's CPU. What this client keeps of aiohttp: its exception classes
(callers catch `aiohttp.ClientError` and `TimeoutError` for both), yarl's URL form (a Bedrock
request is signed on the URL as yarl writes it), its default request headers, and the session
for everything it does not do: calls through RELAY_PROXY go through aiohttp (relay/upstream.py).

The exchange: one request written at once (head and body), the answer parsed by httptools
(llhttp, Node.js's parser: chunked bodies, Content-Length, keep-alive rules), its body handed
to the reader as it arrives. A connection goes back to its pool only once its answer was read to
the end; a connection whose answer was left unread, or that broke, or whose caller was cancelled
mid-exchange, is closed. Reading pauses while more than HIGH_WATER bytes wait unread, so a fast
upstream feeding a slow client does not grow the worker (a 100 MB stream: bench --big-stream).
Timeouts as aiohttp's ClientTimeout had them: connect (RELAY_CONNECT_TIMEOUT), silence while
waiting for data (IDLE_TIMEOUT, sock_read) and the whole exchange (RELAY_TIMEOUT, total); a
timeout raises TimeoutError.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httptools
import yarl
from aiohttp.http import SERVER_SOFTWARE
from multidict import CIMultiDict, CIMultiDictProxy

HIGH_WATER = 256 * 1024  # unread body bytes at which reading pauses
LOW_WATER = 64 * 1024  # and resumes once the reader is below this
KEEPALIVE_SECONDS = 60.0  # an idle connection older than this is closed rather than reused
MAX_IDLE_PER_HOST = 256
DNS_TTL_SECONDS = 300.0
# aiohttp's defaults, so an upstream sees the same request as before (no brotli installed).
_DEFAULT_HEADERS = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate", "User-Agent": SERVER_SOFTWARE}
_FORBIDDEN = frozenset("\r\n\x00")


class UpstreamConnectionError(aiohttp.ClientConnectionError):
    """The connection failed, closed early, or the upstream's answer was not valid HTTP."""


class Timeouts:
    __slots__ = ("connect", "read", "total")

    def __init__(self, connect: float | None, read: float | None, total: float | None) -> None:
        self.connect = connect or None
        self.read = read or None
        self.total = total or None


def _check_header(text: str) -> str:
    # A CR or LF in a header would end it and start another (header injection / request smuggling).
    if not _FORBIDDEN.isdisjoint(text):
        raise UpstreamConnectionError("a request header holds a line break or NUL")
    return text


_SPENT_PARSER = httptools.HttpResponseParser(object())  # a closed connection's: never fed


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one exchange at a time, its answer's state inline."""

    def __init__(self, pool: ConnectionPool, key: tuple[str, str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._loop = asyncio.get_running_loop()
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.header_list: list[tuple[str, str]] = []
        self.headers_done = False
        self.complete = False
        self.error: BaseException | None = None
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.length_known = False
        self.keep_alive = False
        self.decompress: Any = None

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamConnectionError(f"the upstream's answer is not valid HTTP: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        # The parser holds this protocol for its callbacks: let go of it, so that the pair is
        # freed by reference counting, not left to the cyclic garbage collector.
        self.parser = _SPENT_PARSER
        if self.headers_done and not self.complete and not self.length_known and self.error is None:
            self.complete = True  # a body delimited by the connection's end (neither length nor chunks)
            self._flush_decompressor()
        elif not self.complete:
            self._fail(UpstreamConnectionError("the upstream closed the connection before the answer ended"))
        self._wake()

    # -- httptools callbacks ----------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_list.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200:  # an interim answer (103 Early Hints): the real one follows
            self.header_list = []
            return
        self.headers_done = True
        for name, value in self.header_list:
            lowered = name.lower()
            if lowered == "content-length" or (lowered == "transfer-encoding" and "chunked" in value.lower()):
                self.length_known = True
            elif lowered == "content-encoding":
                coding = value.strip().lower()
                if coding in ("gzip", "deflate"):
                    # wbits 47: a zlib or gzip header, detected (https://docs.python.org/3/library/zlib.html)
                    self.decompress = zlib.decompressobj(47)
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.decompress is not None:
            try:
                body = self.decompress.decompress(body)
            except zlib.error as exc:
                self._fail(UpstreamConnectionError(f"the upstream's compressed answer is corrupt: {exc}"))
                self.close()
                return
            if not body:
                return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.headers_done:
            return  # the end of an interim (1xx) answer
        self._flush_decompressor()
        self.keep_alive = self.parser.should_keep_alive()  # valid here only: the parser resets after
        self.complete = True
        self._wake()

    # -- helpers ----------------------------------------------------------------------------------
    def _flush_decompressor(self) -> None:
        if self.decompress is not None:
            rest = self.decompress.flush()
            if rest:
                self.chunks.append(rest)
                self.buffered += len(rest)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None and not self.complete:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until something changed (data, the end, an error); TimeoutError after IDLE_TIMEOUT of silence."""
        if self.error is not None:
            raise self.error
        waiter = self._loop.create_future()
        self.waiter = waiter
        read = self.pool.timeouts.read
        timer = self._loop.call_later(read, _expire, waiter) if read else None
        try:
            await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()
        if self.error is not None:
            raise self.error

    def take(self, limit: int | None = None) -> bytes:
        """What is buffered (at most `limit` bytes), resuming reading once little is left."""
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        if limit is not None and len(data) > limit:
            data, rest = data[:limit], data[limit:]
            self.chunks = [rest]
            self.buffered = len(rest)
        else:
            self.chunks = []
            self.buffered = 0
        if self.paused and self.buffered < LOW_WATER and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()
        return data

    def send(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        self._reset()
        if len(body) < 16 * 1024:
            self.transport.write(head + body)  # one segment, one system call
        else:
            self.transport.writelines((head, body))  # no copy of a large body

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def expire(self) -> None:
        """RELAY_TIMEOUT passed: the exchange fails, and the connection is dropped."""
        self._fail(TimeoutError("the upstream exchange took longer than RELAY_TIMEOUT"))
        self.close()


Target = tuple[tuple[str, str, int], str]


@functools.lru_cache(maxsize=4096)
def target(url: str) -> Target | None:
    """The pool key and the request's first two lines for a URL (channels have few); None for
    what this client leaves to aiohttp: other schemes, credentials in the URL."""
    parsed = yarl.URL(url)
    host = parsed.host_port_subcomponent
    if parsed.scheme not in ("http", "https") or not parsed.raw_host or parsed.port is None or parsed.user or not host:
        return None
    key = (parsed.scheme, parsed.raw_host, parsed.port)
    return key, f"POST {parsed.raw_path_qs} HTTP/1.1\r\nHost: {_check_header(host)}\r\n"


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("the upstream sent nothing within IDLE_TIMEOUT"))


class _Content:
    """The body as it arrives (`iter_any`, `read(n)`), the part of aiohttp's StreamReader used here."""

    __slots__ = ("_response",)

    def __init__(self, response: UpstreamResponse) -> None:
        self._response = response

    async def iter_any(self) -> AsyncIterator[bytes]:
        response = self._response
        while True:
            data = await response.next_piece()
            if not data:
                return
            yield data

    async def read(self, limit: int = -1) -> bytes:
        response = self._response
        if limit < 0:
            return await response.read()
        return await response.next_piece(limit)


class UpstreamResponse:
    """An upstream's answer: status and headers known, the body read through `content` or `read`."""

    def __init__(self, conn: _Connection, deadline_timer: asyncio.TimerHandle | None) -> None:
        self._conn: _Connection | None = conn
        self._deadline_timer = deadline_timer
        self.status = conn.status
        self._header_list = conn.header_list
        self._headers: CIMultiDictProxy[str] | None = None

    @property
    def content(self) -> _Content:
        # Made when asked for, not kept: a response holding its reader, which holds the
        # response, is a reference cycle, and only the cyclic garbage collector frees one. That
        # was 5-10 objects per request (the response, its reader, headers, timer, context) for
        # it to find, ~1.5% of a worker's CPU at c=32 (bench/RESULTS.md, session 12).
        return _Content(self)

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        if self._headers is None:  # built when asked for: most answers never are
            self._headers = CIMultiDictProxy(CIMultiDict(self._header_list))
        return self._headers

    async def next_piece(self, limit: int | None = None) -> bytes:
        """The next buffered part of the body (b"" at its end); returns the connection at the end."""
        conn = self._conn
        if conn is None:
            return b""
        while not conn.chunks or conn.error is not None:
            if conn.complete and conn.error is None:
                self.release()
                return b""
            try:
                await conn.wait()
            except BaseException:
                self._close()
                raise
        return conn.take(limit)

    async def read(self) -> bytes:
        pieces = []
        while piece := await self.next_piece():
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def release(self) -> None:
        """Done with the answer: its connection is kept if the answer was read to its end."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        if conn.complete and conn.keep_alive and not conn.chunks and not conn.closed:
            conn.pool.put_back(conn)
        else:
            conn.close()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if self._deadline_timer is not None:
                self._deadline_timer.cancel()
            conn.close()


class ConnectionPool:
    """Idle keep-alive connections per (scheme, host, port), newest first, and the timeouts of
    the exchanges on them."""

    def __init__(self, timeouts: Timeouts) -> None:
        self.loop = asyncio.get_running_loop()
        self.timeouts = timeouts
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._addresses: dict[tuple[str, int], tuple[float, list[tuple[int, Any]]]] = {}
        self._lookups: dict[tuple[str, int], asyncio.Future[list[tuple[int, Any]]]] = {}

    def put_back(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) >= MAX_IDLE_PER_HOST:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _connection(self, key: tuple[str, str, int]) -> _Connection:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            transport = conn.transport
            if conn.closed or transport is None or transport.is_closing() or now - conn.idle_since > KEEPALIVE_SECONDS:
                conn.close()
                continue
            return conn
        secure = key[0] == "https"
        if secure and self._ssl is None:
            self._ssl = ssl.create_default_context()
        try:
            return await asyncio.wait_for(self._connect(key, secure), self.timeouts.connect)
        except TimeoutError:
            raise TimeoutError("connecting to the upstream took longer than RELAY_CONNECT_TIMEOUT") from None
        except OSError as exc:
            raise UpstreamConnectionError(f"cannot connect to {key[1]}:{key[2]}: {exc.strerror or exc}") from None

    async def _connect(self, key: tuple[str, str, int], secure: bool) -> _Connection:
        """A new connection to the first of the host's addresses that accepts one."""
        loop = asyncio.get_running_loop()
        failure: OSError | None = None
        for family, address in await self._resolve(key[1], key[2]):
            try:
                _, protocol = await loop.create_connection(
                    lambda: _Connection(self, key), address[0], address[1], family=family,
                    ssl=self._ssl if secure else None, server_hostname=key[1] if secure else None,
                )  # fmt: skip
                return protocol
            except OSError as exc:
                failure = exc
        raise failure or OSError("no address")

    async def _resolve(self, host: str, port: int) -> list[tuple[int, Any]]:
        """The host's addresses, kept DNS_TTL_SECONDS (as aiohttp's connector kept them), one
        lookup at a time per host: a burst of new connections does not become a burst of lookups."""
        cached = self._addresses.get((host, port))
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        pending = self._lookups.get((host, port))
        if pending is None:
            pending = self._lookups[(host, port)] = asyncio.ensure_future(self._lookup(host, port))
            pending.add_done_callback(lambda _: self._lookups.pop((host, port), None))
        return await asyncio.shield(pending)

    async def _lookup(self, host: str, port: int) -> list[tuple[int, Any]]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [(family, address) for family, _, _, _, address in infos]
        if not addresses:
            raise OSError(f"{host} has no address")
        self._addresses[(host, port)] = (time.monotonic() + DNS_TTL_SECONDS, addresses)
        return addresses

    async def post(self, to: Target, headers: dict[str, str], body: bytes) -> UpstreamResponse:
        """Send a POST (`to`: from `target(url)`) and return the answer once its status and headers arrived."""
        key, request_line = to
        lines = [request_line]
        given = set()
        for name, value in headers.items():
            lowered = name.lower()
            given.add(lowered)
            if lowered not in ("host", "content-length", "transfer-encoding"):
                lines.append(f"{_check_header(name)}: {_check_header(str(value))}\r\n")
        for name, value in _DEFAULT_HEADERS.items():
            if name.lower() not in given:
                lines.append(f"{name}: {value}\r\n")
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        head = "".join(lines).encode()  # UTF-8, as aiohttp writes header values
        loop = asyncio.get_running_loop()
        started = loop.time()
        conn = await self._connection(key)
        deadline_timer = None
        if self.timeouts.total:
            remaining = self.timeouts.total - (loop.time() - started)
            deadline_timer = loop.call_later(max(remaining, 0), conn.expire)
        try:
            conn.send(head, body)
            while not conn.headers_done:
                await conn.wait()  # raises what connection_lost or the parser recorded
        except BaseException:
            if deadline_timer is not None:
                deadline_timer.cancel()
            conn.close()  # its state is unknown: cut, timed out, or the caller cancelled
            raise
        return UpstreamResponse(conn, deadline_timer)

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
