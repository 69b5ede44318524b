"""A small event-stream encoder for building binary fixtures, independent of the decoder
under test (and of the fake provider's encoder): the tests also run botocore's parser on its
output, so a framing mistake here cannot hide one in the decoder."""

from __future__ import annotations

import base64
import binascii
import json
import struct
import uuid
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def header(name: str, value: Any) -> bytes:
    """One header; the value type follows the Python type (bool, int -> int32, bytes, str,
    uuid.UUID), or an explicit (type code, packed bytes) pair."""
    key = name.encode()
    out = struct.pack("B", len(key)) + key
    if isinstance(value, tuple):
        code, packed = value
        return out + struct.pack("B", code) + packed
    if isinstance(value, bool):
        return out + struct.pack("B", 0 if value else 1)
    if isinstance(value, int):
        return out + struct.pack(">Bi", 4, value)
    if isinstance(value, bytes):
        return out + struct.pack(">BH", 6, len(value)) + value
    if isinstance(value, uuid.UUID):
        return out + struct.pack("B", 9) + value.bytes
    data = str(value).encode()
    return out + struct.pack(">BH", 7, len(data)) + data


def frame(headers: dict[str, Any], payload: bytes, *, bad_prelude_crc: bool = False, bad_message_crc: bool = False) -> bytes:
    head = b"".join(header(k, v) for k, v in headers.items())
    prelude = struct.pack(">II", 16 + len(head) + len(payload), len(head))
    prelude_crc = binascii.crc32(prelude) ^ (1 if bad_prelude_crc else 0)
    body = prelude + struct.pack(">I", prelude_crc) + head + payload
    return body + struct.pack(">I", binascii.crc32(body) ^ (1 if bad_message_crc else 0))


def event(event_type: str, payload: dict[str, Any], **kwargs: Any) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps(payload).encode(), **kwargs)


def chunk(anthropic_event: dict[str, Any], pad: str = "abcd") -> bytes:
    """An InvokeModelWithResponseStream `chunk`: the Anthropic event, base64, in `bytes`."""
    return event("chunk", {"bytes": base64.b64encode(json.dumps(anthropic_event).encode()).decode(), "p": pad})


def exception(exception_type: str, message: str) -> bytes:
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, json.dumps({"message": message}).encode())


def converse_stream(events: list[list[Any]]) -> bytes:
    return b"".join(event(kind, payload) for kind, payload in events)


def claude_stream(events: list[dict[str, Any]]) -> bytes:
    return b"".join(chunk(e) for e in events)
