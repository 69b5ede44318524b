"""Server-sent events framing: split an arriving byte stream into whole events.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
Events end with a blank line; upstreams use "\n" or "\r\n". Memory is bounded: a single event
larger than `max_event_bytes` is an error, so a broken upstream cannot grow the buffer forever.
"""

from __future__ import annotations


class SSEFramingError(Exception):
    pass


class SSESplitter:
    def __init__(self, max_event_bytes: int = 8 * 1024 * 1024) -> None:
        self._buffer = b""
        self._max = max_event_bytes

    def feed(self, data: bytes) -> list[bytes]:
        """Whole events (without their terminating blank line) completed by `data`."""
        buffer = self._buffer + data
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        events = buffer.split(b"\n\n")
        self._buffer = events.pop()
        if len(self._buffer) > self._max:
            raise SSEFramingError("an upstream event exceeded the size limit")
        return [event for event in events if event]

    def close(self) -> bytes:
        """What is left when the stream ends (an unterminated last event, if any)."""
        rest, self._buffer = self._buffer.strip(), b""
        return rest


def event_data(event: bytes) -> bytes | None:
    """The data of an event (data lines joined), or None for comment-only events."""
    if event.startswith(b"data: ") and b"\n" not in event:
        return event[6:]  # the usual event, one data line: no splitting and joining
    parts = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(parts) if parts else None
