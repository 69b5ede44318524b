"""Encoder of the AWS event-stream binary framing (``application/vnd.amazon.eventstream``),
which Bedrock's streaming operations answer with.

Spec: https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html.  One message is,
big-endian throughout::

    total length (4) | headers length (4) | prelude CRC32 (4) | headers | payload | message CRC32 (4)

The prelude CRC covers the first 8 bytes and the message CRC every byte before it; both are
the gzip CRC32 (``zlib.crc32``).  Only string headers (value type 7) are written, which is all
Bedrock sends.  No botocore here: the fake must run without AWS libraries, and the tests decode
its output with botocore's parser to prove the framing is real.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import orjson

__all__ = ["encode_message", "event_frame", "exception_frame"]

_STRING = 7


def _headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        key, data = name.encode("utf-8"), value.encode("utf-8")
        out += struct.pack(">B", len(key)) + key + struct.pack(">BH", _STRING, len(data)) + data
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes, *, corrupt: bool = False) -> bytes:
    """One framed message; ``corrupt`` flips the message CRC (the ``garbage`` scenario)."""
    head = _headers(headers)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + head + payload
    crc = zlib.crc32(body) ^ (0xFFFFFFFF if corrupt else 0)
    return body + struct.pack(">I", crc)


def event_frame(event_type: str, payload: dict[str, Any], *, corrupt: bool = False) -> bytes:
    """An ``event`` message with a JSON payload, as Bedrock frames every stream event."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, orjson.dumps(payload), corrupt=corrupt)


def exception_frame(exception_type: str, message: str) -> bytes:
    """An in-stream error: ``:message-type: exception`` with the error's name and message."""
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_message(headers, orjson.dumps({"message": message}))
