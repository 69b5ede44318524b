"""Relaying a stream event by event, reading usage as it passes, in bounded memory.

Two ways through, with one interface for the relay loop:
- PassthroughStream: caller and upstream speak the same format. Events are forwarded byte for
  byte (no re-serialisation); each one is also fed to that format's decoder to read usage,
  count delivered output and notice the end.
- ConvertingStream: the upstream's decoder turns its events into IR events, the caller's
  encoder turns those into the caller's format.

Both hold back the stream's terminal event(s) (`end_bytes`): the relay sends them only after
billing is settled, so a client that saw the end can rely on the accounting being done.
Only counters and small per-part state are kept, never the text.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from billing.pricing import Usage

from . import ir
from .converters import converter
from .protocols.sse import SSESplitter, event_data
from .tokens import count_text

Forward = list[tuple[bytes, int]]  # (bytes for the client, output tokens in them)


class Encoder(Protocol):
    def encode(self, event: ir.StreamEvent) -> bytes: ...

    def error(self, message: str, type: str, code: str | None) -> bytes: ...

    def close(self) -> bytes: ...


def event_tokens(event: ir.StreamEvent) -> int:
    if isinstance(event, ir.TextDelta):
        return count_text(event.text)
    if isinstance(event, ir.ReasoningDelta):
        return count_text(event.text) if event.text else 0
    if isinstance(event, ir.ToolArgsDelta):
        return count_text(event.arguments)
    if isinstance(event, ir.PartStart) and event.tool_name:
        return count_text(event.tool_name)
    return 0


class _Observed:
    """What both stream kinds learn from IR events."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.prompt_usage: Usage | None = None
        self.complete = False
        self.error: ir.StreamError | None = None

    def observe(self, events: list[ir.StreamEvent]) -> int:
        tokens = 0
        for event in events:
            tokens += event_tokens(event)
            if isinstance(event, ir.StreamStart) and event.usage is not None:
                self.prompt_usage = event.usage
            elif isinstance(event, ir.StreamEnd):
                self.complete = True
                if event.usage is not None:
                    self.usage = event.usage
            elif isinstance(event, ir.StreamError):
                self.error = event
        return tokens


class PassthroughStream(_Observed):
    def __init__(self, wire: str, *, drop_usage_chunk: bool = False) -> None:
        super().__init__()
        self._splitter = SSESplitter()
        self._decoder = converter(wire).StreamDecoder()
        self._decoder.remember_parsed = True
        # The decoder's short way for the usual event (chat has one), read here without the IR.
        self._plain_text = getattr(self._decoder, "plain_text", None)
        self._wire = wire
        self._drop_usage_chunk = drop_usage_chunk
        self._held: list[bytes] = []
        self.error_forwarded = False

    def feed(self, data: bytes) -> Forward:
        out: Forward = []
        plain_text = self._plain_text
        for event in self._splitter.feed(data):
            chunk = None
            if plain_text is not None and event.startswith(b"data: {") and b"\n" not in event and not self.complete:
                # The usual event: one data line the decoder reads as plain text. It is forwarded
                # as it came; anything else (or anything after the end) takes `_event`, with the
                # JSON parsed here.
                try:
                    chunk = orjson.loads(event[6:])
                except orjson.JSONDecodeError:
                    pass
                text = plain_text(chunk) if type(chunk) is dict else None
                if text is not None:
                    out.append((event + b"\n\n", count_text(text) if text else 0))
                    continue
            if (item := self._event(event, chunk)) is not None:
                out.append(item)
        return out

    def finish(self) -> Forward:
        out: Forward = []
        rest = self._splitter.close()
        if rest and (item := self._event(rest)) is not None:
            out.append(item)
        self.observe(self._decoder.close())
        return out

    def _event(self, event: bytes, chunk: Any = None) -> tuple[bytes, int] | None:
        """`chunk`: the event's JSON when `feed` parsed it already (chat), else None."""
        raw = event + b"\n\n"
        had_error = self.error is not None
        decoded = self._decoder.feed_event(event) if chunk is None else self._decoder.feed_chunk(event, chunk)
        tokens = self.observe(decoded)
        if self.error is not None and not had_error:
            if not self._forwardable(event):
                return None  # garbage the decoder refused: the relay ends with an error of its own
            self.error_forwarded = True
            return raw, 0  # the upstream's own error event, already in the caller's format
        if not self._forwardable(event):
            return None
        if self.complete:
            self._held.append(raw)  # the terminal event, and anything after it
            return None
        return raw, tokens

    def _forwardable(self, event: bytes) -> bool:
        parsed, self._decoder.parsed = self._decoder.parsed, None  # kept no longer than this event
        if parsed is not None and parsed[0] is event:
            chunk: Any = parsed[1]  # the decoder has just parsed this very event: not twice
            if not isinstance(chunk, dict):
                return False
        else:
            data = event_data(event)
            if data is None:
                return False  # comments and keep-alives
            if data.strip() == b"[DONE]":
                return True
            if not data.startswith(b"{"):
                return False
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                return False  # a garbled event would break the client's parser
        if self._wire != "chat" or not isinstance(chunk, dict) or chunk.get("choices"):
            return True
        if isinstance(chunk.get("usage"), dict):
            # Usage the gateway asked for itself (ENFORCE_INCLUDE_USAGE) is not the client's.
            return not self._drop_usage_chunk
        # A chunk with neither choices nor usage: Azure's opening prompt-filter chunk (object "",
        # https://learn.microsoft.com/azure/ai-services/openai/concepts/content-filter). Clients
        # reading choices[0] of every chunk break on it.
        return False

    def end_bytes(self) -> bytes:
        return b"".join(self._held)


class ConvertingStream(_Observed):
    def __init__(self, decoder: Any, encoder: Encoder) -> None:
        super().__init__()
        self._decoder = decoder
        self.encoder = encoder
        self._end: ir.StreamEnd | None = None

    def feed(self, data: bytes) -> Forward:
        return self._convert(self._decoder.feed(data))

    def finish(self) -> Forward:
        return self._convert(self._decoder.close())

    def _convert(self, events: list[ir.StreamEvent]) -> Forward:
        out: Forward = []
        for event in events:
            tokens = self.observe([event])
            if isinstance(event, ir.StreamEnd):
                self._end = event  # encoded after settlement
            elif isinstance(event, ir.StreamError) or self._end is not None:
                continue
            else:
                out.append((self.encoder.encode(event), tokens))
        return out

    def end_bytes(self) -> bytes:
        return (self.encoder.encode(self._end) if self._end else b"") + self.encoder.close()
