"""uvicorn's httptools protocol, with the writes of one event-loop step sent as one.

uvicorn writes a response's head and its body with two `transport.write` calls, and uvloop
sends each at once: two `write(2)` calls per answer, and over TCP_NODELAY two segments, the
first of which wakes the client for a head it cannot use yet. A gateway worker spent ~16% of
its CPU in those two writes (bench/RESULTS.md, py-spy at c=32). Here the protocol's transport
gathers what is written during one step of the loop and sends it when the step ends, in one
call: one syscall per answer. A stream's events still leave as they come (each relay step
that writes ends before the next upstream read), and a large write goes at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FLUSH_AT = 64 * 1024  # bytes gathered before they are sent without waiting for the step's end


class CoalescingTransport:
    """Proxy of an asyncio transport whose writes within one loop step leave together.

    Everything but writing and closing is the wrapped transport's own (flow control, extra
    info, set_protocol for a WebSocket upgrade): uvicorn's protocol keeps working unchanged.
    """

    __slots__ = ("_transport", "_loop", "_pending", "_size")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._pending is None:
            self._pending = []
            self._loop.call_soon(self._step_ended)
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_AT:
            self._send()

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _send(self) -> None:
        """Send what is gathered (the step's end stays scheduled while `_pending` is a list)."""
        pending = self._pending
        if pending:
            self._pending, self._size = [], 0
            if not self._transport.is_closing():
                self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def _step_ended(self) -> None:
        self._send()
        self._pending = None

    def close(self) -> None:
        self._send()  # what uvicorn wrote just before closing (a last chunk, an error page)
        self._transport.close()

    def write_eof(self) -> None:
        self._send()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
