"""CoalescingTransport (oneapi_site/http_protocol.py): the writes of one loop step leave as one."""

from __future__ import annotations

import asyncio
from typing import Any

from oneapi_site.http_protocol import FLUSH_AT, CoalescingTransport


class Recording:
    """A transport that records each write the kernel would get."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None


def _run(body: Any) -> Recording:
    async def main() -> Recording:
        raw = Recording()
        await body(CoalescingTransport(raw, asyncio.get_running_loop()))  # type: ignore[arg-type]
        return raw

    return asyncio.run(main())


def test_one_step_one_write_and_the_next_step_another() -> None:
    async def body(t: CoalescingTransport) -> None:
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"")
        t.write(b"body")
        assert t.get_write_buffer_size() == 23  # gathered, not yet sent
        await asyncio.sleep(0)
        t.write(memoryview(b"next"))
        await asyncio.sleep(0)

    assert _run(body).writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next"]


def test_a_large_write_leaves_at_once_and_close_sends_the_rest() -> None:
    async def body(t: CoalescingTransport) -> None:
        t.write(b"a" * FLUSH_AT)
        assert t._transport.writes == [b"a" * FLUSH_AT]  # type: ignore[attr-defined]
        t.write(b"tail")
        t.close()
        t.write(b"after close")  # dropped, as a closing transport drops it
        await asyncio.sleep(0)

    raw = _run(body)
    assert raw.writes == [b"a" * FLUSH_AT, b"tail"] and raw.closed


def test_everything_else_is_the_transports_own() -> None:
    async def body(t: CoalescingTransport) -> None:
        assert t.get_extra_info("peername") == ("127.0.0.1", 1)
        assert t.is_closing() is False

    _run(body)
