"""Decoder of the AWS event-stream binary framing (`application/vnd.amazon.eventstream`), the
body of Bedrock's InvokeModelWithResponseStream and ConverseStream answers.

https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html (the same framing for all
AWS streaming APIs). A message is, big-endian throughout:

    total length (4) | headers length (4) | prelude CRC32 (4) | headers | payload | message CRC32 (4)

The prelude CRC covers the first 8 bytes, the message CRC everything before it (CRC32 as in
gzip, `zlib.crc32`). A header is name length (1), name, value type (1), value.

Our own decoder rather than botocore's `EventStreamBuffer`: that one grows an immutable `bytes`
buffer by concatenation (quadratic when an upstream trickles bytes) and only caps a payload at
24 MB; this one keeps a `bytearray`, caps a whole message, and reports any framing fault as one
`EventStreamError` that the stream decoder turns into an `ir.StreamError`. The tests check it
against botocore's parser on the same bytes.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PRELUDE_LENGTH = 12
MIN_MESSAGE_LENGTH = 16  # prelude + message CRC, no headers, no payload
MAX_MESSAGE_LENGTH = 16 * 1024 * 1024  # Bedrock chunks are a few KB; this bounds the buffer
MAX_HEADERS_LENGTH = 128 * 1024  # the limit AWS SDKs apply

_PRELUDE = struct.Struct(">III")


class EventStreamError(Exception):
    """The bytes are not a well-formed event stream (bad CRC, impossible lengths)."""


@dataclass(slots=True)
class Message:
    headers: dict[str, Any]
    payload: bytes

    @property
    def message_type(self) -> str:
        return str(self.headers.get(":message-type") or "event")

    @property
    def event_type(self) -> str:
        return str(self.headers.get(":event-type") or "")


class EventStreamDecoder:
    """Bytes in any chunking -> whole, checked messages."""

    def __init__(self, max_message_length: int = MAX_MESSAGE_LENGTH) -> None:
        self._buffer = bytearray()
        self._max = max_message_length
        self._failed = False

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message still buffered."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        """The messages completed by `data`. Raises EventStreamError on corrupt framing; after
        that the stream cannot be resynchronised (lengths are untrustworthy), so every later
        call raises too."""
        if self._failed:
            raise EventStreamError("the event stream is already broken")
        self._buffer += data
        messages: list[Message] = []
        try:
            while (message := self._next()) is not None:
                messages.append(message)
        except EventStreamError:
            self._failed = True
            self._buffer.clear()
            raise
        return messages

    def _next(self) -> Message | None:
        buffer = self._buffer
        if len(buffer) < PRELUDE_LENGTH:
            return None
        total, headers_length, prelude_crc = _PRELUDE.unpack_from(buffer)
        if zlib.crc32(buffer[:8]) != prelude_crc:
            raise EventStreamError("event stream prelude checksum mismatch")
        if total < MIN_MESSAGE_LENGTH or total > self._max:
            raise EventStreamError(f"event stream message length {total} is out of bounds")
        if headers_length > MAX_HEADERS_LENGTH or headers_length > total - MIN_MESSAGE_LENGTH:
            raise EventStreamError(f"event stream headers length {headers_length} is out of bounds")
        if len(buffer) < total:
            return None
        (message_crc,) = struct.unpack_from(">I", buffer, total - 4)
        if zlib.crc32(memoryview(buffer)[: total - 4]) != message_crc:
            raise EventStreamError("event stream message checksum mismatch")
        headers = parse_headers(bytes(buffer[PRELUDE_LENGTH : PRELUDE_LENGTH + headers_length]))
        payload = bytes(buffer[PRELUDE_LENGTH + headers_length : total - 4])
        del buffer[:total]
        return Message(headers, payload)


def parse_headers(raw: bytes) -> dict[str, Any]:
    """Header block -> {name: value}, every value type of the spec (Bedrock only sends strings)."""
    headers: dict[str, Any] = {}
    pos, end = 0, len(raw)
    try:
        while pos < end:
            name_length = raw[pos]
            name = raw[pos + 1 : pos + 1 + name_length].decode("utf-8")
            pos += 1 + name_length
            kind = raw[pos]
            pos += 1
            value: Any
            if kind in (0, 1):  # bool true / false, no value bytes
                value = kind == 0
            elif kind == 2:
                (value,) = struct.unpack_from(">b", raw, pos)
                pos += 1
            elif kind == 3:
                (value,) = struct.unpack_from(">h", raw, pos)
                pos += 2
            elif kind == 4:
                (value,) = struct.unpack_from(">i", raw, pos)
                pos += 4
            elif kind in (5, 8):  # long; timestamp = milliseconds since the epoch
                (value,) = struct.unpack_from(">q", raw, pos)
                pos += 8
                if kind == 8:
                    value = datetime.fromtimestamp(value / 1000, UTC)
            elif kind in (6, 7):  # bytes; string (UTF-8), 2-byte length
                (length,) = struct.unpack_from(">H", raw, pos)
                data = raw[pos + 2 : pos + 2 + length]
                if len(data) != length:
                    raise EventStreamError("truncated event stream header value")
                pos += 2 + length
                value = data.decode("utf-8") if kind == 7 else data
            elif kind == 9:
                value = uuid.UUID(bytes=raw[pos : pos + 16])
                pos += 16
            else:
                raise EventStreamError(f"unknown event stream header type {kind}")
            if pos > end:
                raise EventStreamError("truncated event stream header")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError, ValueError) as exc:
        raise EventStreamError(f"malformed event stream headers: {exc}") from None
    return headers
