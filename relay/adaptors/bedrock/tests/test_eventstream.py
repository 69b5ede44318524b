"""The event-stream frame decoder, checked against botocore's parser on the same bytes."""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from relay.adaptors.bedrock.eventstream import EventStreamDecoder, EventStreamError

from . import helpers as h


def botocore_messages(data: bytes) -> list[tuple[dict, bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(m.headers, m.payload) for m in buffer]


def test_frames_match_botocore_whole_and_byte_by_byte() -> None:
    data = h.converse_stream(h.load("converse_stream_tool.json")) + h.claude_stream(h.load("claude_stream_text.json"))
    expected = botocore_messages(data)
    assert len(expected) == 17
    whole = [(m.headers, m.payload) for m in EventStreamDecoder().feed(data)]
    decoder = EventStreamDecoder()
    split = []
    for i in range(len(data)):
        split += [(m.headers, m.payload) for m in decoder.feed(data[i : i + 1])]
    assert whole == split == expected
    assert decoder.pending == 0


def test_every_header_type() -> None:
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers = {
        "t": True, "f": False, "byte": (2, struct.pack(">b", -3)), "short": (3, struct.pack(">h", 300)),
        "int": 70000, "long": (5, struct.pack(">q", 2**40)), "bytes": b"\x00\x01", "str": "héllo",
        "ts": (8, struct.pack(">q", 1_700_000_000_000)), "id": ident,
    }
    data = h.frame(headers, b"{}")
    (message,) = EventStreamDecoder().feed(data)
    got = message.headers
    assert (got["t"], got["f"], got["byte"], got["short"], got["int"], got["long"]) == (True, False, -3, 300, 70000, 2**40)
    assert (got["bytes"], got["str"], got["id"]) == (b"\x00\x01", "héllo", ident)
    assert int(got["ts"].timestamp()) == 1_700_000_000
    assert botocore_messages(data)[0][0]["str"] == "héllo"  # the helper's framing is real


def test_message_crc_mismatch() -> None:
    bad = h.event("messageStart", {"role": "assistant"}, bad_message_crc=True)
    with pytest.raises(ChecksumMismatch):
        botocore_messages(bad)
    decoder = EventStreamDecoder()
    good = h.event("messageStart", {"role": "assistant"})
    assert len(decoder.feed(good)) == 1
    with pytest.raises(EventStreamError, match="message checksum"):
        decoder.feed(bad)
    with pytest.raises(EventStreamError, match="already broken"):
        decoder.feed(good)  # lengths cannot be trusted any more: no resynchronisation


def test_prelude_crc_mismatch_is_caught_before_the_length_is_trusted() -> None:
    bad = h.event("messageStart", {"role": "assistant"}, bad_prelude_crc=True)
    with pytest.raises(EventStreamError, match="prelude checksum"):
        EventStreamDecoder().feed(bad[:12])  # only the prelude has arrived


def test_impossible_lengths() -> None:
    prelude = struct.pack(">II", 64 * 1024 * 1024, 0)
    huge = prelude + struct.pack(">I", zlib.crc32(prelude))
    with pytest.raises(EventStreamError, match="out of bounds"):
        EventStreamDecoder().feed(huge)
    prelude = struct.pack(">II", 20, 10)  # headers longer than the message can hold
    with pytest.raises(EventStreamError, match="headers length"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))


def test_truncated_header_value() -> None:
    head = h.header("x", "abc")[:-1]  # value shorter than its declared length
    prelude = struct.pack(">II", 16 + len(head), len(head))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + head
    data = body + struct.pack(">I", zlib.crc32(body))
    with pytest.raises(EventStreamError, match="header"):
        EventStreamDecoder().feed(data)


def test_incomplete_message_waits() -> None:
    data = h.event("messageStop", {"stopReason": "end_turn"})
    decoder = EventStreamDecoder()
    assert decoder.feed(data[:-1]) == []
    assert decoder.pending == len(data) - 1
    (message,) = decoder.feed(data[-1:])
    assert message.event_type == "messageStop" and message.message_type == "event"
