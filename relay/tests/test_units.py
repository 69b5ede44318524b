"""Pure parts of the relay: SSE framing, key parsing and checks, channel selection, stream relay."""

from __future__ import annotations

import time
from collections import Counter

import orjson
import pytest

from accounts.keys import digest
from relay.errors import AuthenticationFailed, InsufficientQuota, NoChannel, NotFound, PermissionDenied
from relay.keyauth import KeyEntry, check_key, check_model_allowed, extract_key, parse_subnets
from relay.protocols.sse import SSEFramingError, SSESplitter, event_data
from relay.selection import select_channel
from relay.snapshot import ChannelEntry, Route, Snapshot
from relay.streaming import PassthroughStream


def test_sse_splitter_handles_arbitrary_chunk_boundaries_and_crlf():
    splitter = SSESplitter()
    stream = b"data: a\r\n\r\ndata: b\n\n: comment\n\ndata: c\n\n"
    events = []
    for i in range(len(stream)):
        events += splitter.feed(stream[i : i + 1])
    assert [event_data(e) for e in events] == [b"a", b"b", None, b"c"]
    assert splitter.close() == b""


def test_event_data_reads_one_line_events_and_joins_multi_line_ones():
    assert event_data(b"data: {}") == b"{}"  # the usual event
    assert event_data(b"data:{}") == b"{}"  # no space after the colon
    assert event_data(b"event: delta\ndata: x") == b"x"  # a named event
    assert event_data(b"data: a\ndata:  b\n: note") == b"a\n b"  # one space dropped, lines joined
    assert event_data(b": keep-alive") is None


def test_sse_splitter_bounds_memory():
    splitter = SSESplitter(max_event_bytes=100)
    with pytest.raises(SSEFramingError):
        splitter.feed(b"data: " + b"x" * 200)


def test_extract_key_from_each_header_and_pin_suffix():
    body = "A" * 48
    assert extract_key({"authorization": f"Bearer sk-{body}"}).digest == digest(body)
    assert extract_key({"authorization": f"bearer {body}"}).digest == digest(body)
    assert extract_key({"x-api-key": f"sk-{body}"}).digest == digest(body)
    assert extract_key({"api-key": f"sk-{body}-12"}).pinned_channel == 12
    assert extract_key({}) is None


def entry(**changes: object) -> KeyEntry:
    fields = dict(
        key_id=1, key_name="k", status=1, expires_at=None, remain_quota=10, unlimited_quota=False,
        allowed_models=frozenset(), subnets=(), user_id=1, username="u", user_status=1, user_role=1,
        group="default", group_ratio=10_000,
    )
    fields.update(changes)
    return KeyEntry(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"status": 2}, AuthenticationFailed),
        ({"expires_at": time.time() - 1}, AuthenticationFailed),
        ({"remain_quota": 0}, InsufficientQuota),
        ({"user_status": 2}, PermissionDenied),
        ({"subnets": parse_subnets("10.0.0.0/8")}, PermissionDenied),
    ],
)
def test_check_key_refusals(changes, error):
    with pytest.raises(error):
        check_key(entry(**changes), client_ip="127.0.0.1")


def test_check_key_accepts_allowed_subnet_and_unlimited_keys():
    check_key(entry(subnets=parse_subnets("127.0.0.0/8, ::1"), remain_quota=0, unlimited_quota=True), client_ip="127.0.0.1")
    check_model_allowed(entry(allowed_models=frozenset({"a"})), "a")
    with pytest.raises(PermissionDenied):
        check_model_allowed(entry(allowed_models=frozenset({"a"})), "b")


def channel(cid: int, weight: int = 1) -> ChannelEntry:
    return ChannelEntry(cid, f"c{cid}", 1, "openai", "http://x", "k", {}, {}, 0, weight, True)


def snapshot() -> Snapshot:
    snap = Snapshot()
    snap.known = {("default", "m"), ("default", "off")}
    snap.routes[("default", "m")] = Route(tiers=[(10, [(channel(1, 3), 3), (channel(2, 1), 1)]), (0, [(channel(3), 1)])])
    return snap


def test_selection_is_weighted_within_the_top_tier():
    counts = Counter(select_channel(snapshot(), group="default", model="m", exclude=set()).id for _ in range(4000))
    assert set(counts) == {1, 2}
    assert 2.4 < counts[1] / counts[2] < 3.8


def test_selection_falls_to_lower_tiers_and_skips_suspended():
    snap = snapshot()
    assert select_channel(snap, group="default", model="m", exclude={1, 2}).id == 3
    snap.suspended_until[(3, "m")] = time.time() + 60
    with pytest.raises(NoChannel):
        select_channel(snap, group="default", model="m", exclude={1, 2})


def test_unknown_model_and_unavailable_model_differ():
    with pytest.raises(NotFound):
        select_channel(snapshot(), group="default", model="nope", exclude=set())
    with pytest.raises(NoChannel):
        select_channel(snapshot(), group="default", model="off", exclude=set())


def chunk(**fields: object) -> bytes:
    return b"data: " + orjson.dumps(fields) + b"\n\n"


def test_passthrough_reads_usage_strips_the_enforced_usage_chunk_and_holds_the_end():
    relay = PassthroughStream("chat", drop_usage_chunk=True)
    out = relay.feed(chunk(id="c", choices=[{"index": 0, "delta": {"content": "hello world"}}], usage=None))
    out += relay.feed(chunk(id="c", choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    out += relay.feed(chunk(id="c", choices=[], usage={"prompt_tokens": 3, "completion_tokens": 2}) + b"data: [DONE]\n\n")
    assert [tokens for _, tokens in out] == [2, 0]
    assert all(event.startswith(b"data: {") for event, _ in out)
    assert relay.usage is not None and relay.usage.completion_tokens == 2 and relay.complete
    assert relay.end_bytes() == b"data: [DONE]\n\n"  # sent only after settlement


def test_passthrough_forwards_usage_when_asked_and_drops_garbage():
    relay = PassthroughStream("chat", drop_usage_chunk=False)
    out = relay.feed(b"data: {broken\n\n" + chunk(id="c", choices=[], usage={"prompt_tokens": 1, "completion_tokens": 1}))
    assert len(out) + len(relay.end_bytes().split(b"\n\n")) - 1 == 1
    assert b"usage" in (out[0][0] if out else relay.end_bytes())


def test_stream_tokens_count_tool_call_arguments():
    relay = PassthroughStream("chat")
    delta = {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
    assert sum(tokens for _, tokens in relay.feed(chunk(id="c", choices=[{"index": 0, "delta": delta}]))) == 1 + 9


# Chunks a pass-through stream meets, the usual ones and every kind the short way must leave to
# the general path (relay.converters.chat_stream.StreamDecoder.plain_text).
_MIXED_CHAT_STREAM = b"".join(
    [
        b": keep-alive\n\n",
        chunk(id="c", choices=[], prompt_filter_results=[]),  # Azure's opening chunk
        chunk(id="c", choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}}]),
        chunk(id="c", choices=[{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}]),
        chunk(id="c", choices=[{"index": 0, "delta": {"role": "assistant", "content": " there,"}}]),
        chunk(id="c", choices=[{"index": 0, "delta": {"content": None}}]),
        chunk(id="c", choices=[{"delta": {"content": " no index"}}]),
        chunk(id="c", choices=[{"index": 1, "delta": {"content": "second choice"}}]),
        chunk(id="c", choices=[{"index": 0, "delta": {"content": "a"}}, {"index": 1, "delta": {"content": "b"}}]),
        chunk(id="c", choices=[{"index": 0, "delta": {"content": 7}}]),
        chunk(id="c", choices=[{"index": 0, "delta": {"reasoning_content": "think"}}]),
        chunk(id="c", choices=[{"index": 0, "delta": {"content": "back to text"}}]),
        chunk(id="c", choices=[{"index": 0, "delta": {"refusal": "no"}}]),
        chunk(id="c", choices=[{"index": 0, "delta": {"content": "with usage"}}], usage={"prompt_tokens": 1}),
        b"data: {broken\n\n",
        b"event: x\ndata: " + orjson.dumps({"choices": [{"index": 0, "delta": {"content": "named"}}]}) + b"\n\n",
        chunk(id="c", choices=[{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f", "arguments": "{}"}}]}}]),
        chunk(id="c", choices=[{"index": 0, "delta": {"content": "after the tool"}}]),
        chunk(id="c", choices=[{"index": 0, "delta": {"content": "last"}, "finish_reason": "stop"}]),
        chunk(id="c", choices=[{"index": 0, "delta": {"content": "after the finish"}}]),
        chunk(id="c", choices=[], usage={"prompt_tokens": 3, "completion_tokens": 9}),
        b"data: [DONE]\n\n",
        chunk(id="c", choices=[{"index": 0, "delta": {"content": "after the end"}}]),
    ]
)


@pytest.mark.parametrize("piece", [1, 7, 64, len(_MIXED_CHAT_STREAM)])
def test_passthrough_short_way_for_plain_chunks_changes_nothing(piece: int) -> None:
    """The short way (plain text chunks read without the IR) forwards, counts and observes
    exactly what the general path does, whatever the chunks and however the bytes arrive."""

    def run(short_way: bool) -> tuple[object, ...]:
        relay = PassthroughStream("chat")
        if not short_way:
            relay._plain_text = None
            relay._decoder.plain_text = lambda chunk: None  # type: ignore[method-assign]
        else:
            read = relay._decoder.plain_text
            relay._plain_text = lambda chunk: taken.append(text := read(chunk)) or text
        out = []
        for i in range(0, len(_MIXED_CHAT_STREAM), piece):
            out += relay.feed(_MIXED_CHAT_STREAM[i : i + piece])
        out += relay.finish()
        return out, relay.usage, relay.complete, relay.error, relay.end_bytes()

    taken: list[str | None] = []
    short, general = run(True), run(False)
    assert short == general
    assert [text for text in taken if text is not None] == [" there,", "", " no index"]
    forwarded = b"".join(data for data, _ in short[0])  # type: ignore[union-attr]
    assert b"Hello" in forwarded and b"after the tool" in forwarded and b"{broken" not in forwarded
    assert short[2] is True and short[4] == b"".join(
        [chunk(id="c", choices=[], usage={"prompt_tokens": 3, "completion_tokens": 9}), b"data: [DONE]\n\n",
         chunk(id="c", choices=[{"index": 0, "delta": {"content": "after the end"}}])]
    )


def test_chat_decoder_short_way_gives_the_same_events() -> None:
    from relay.converters.chat_stream import StreamDecoder

    def events(short_way: bool) -> list[object]:
        decoder = StreamDecoder()
        if not short_way:
            decoder.plain_text = lambda chunk: None  # type: ignore[method-assign]
        return decoder.feed(_MIXED_CHAT_STREAM) + decoder.close()

    assert events(True) == events(False)
    assert sum(1 for e in events(True) if type(e).__name__ == "TextDelta") >= 6
