"""Pure converters between wire formats and the internal representation (relay.ir).

No Django, no I/O. One module per wire format; each exposes the same functions so the relay
can pair any inbound format with any upstream protocol:

    request_to_ir(payload: dict) -> ir.Request
        A request in this format -> IR. Raises ir.ConversionError (a 400 for the caller) on
        input the format does not allow; unknown *fields* go to Request.extra, never an error.
    request_from_ir(request: ir.Request) -> dict
        IR -> a request body in this format (to send upstream).
    response_to_ir(payload: dict) -> ir.Response
        A non-stream response in this format (from upstream) -> IR.
    response_from_ir(response: ir.Response, request: ir.Request) -> dict
        IR -> a non-stream response in this format (for the caller).
    class StreamDecoder:            upstream bytes in this format -> IR stream events
        feed(data: bytes) -> list[ir.StreamEvent]   (any chunking; bounded memory)
        close() -> list[ir.StreamEvent]             (at end of input; a missing end -> StreamError)
    class StreamEncoder(request: ir.Request, response_id: str, model: str, created: int):
        encode(event: ir.StreamEvent) -> bytes      IR events -> this format's SSE bytes
        error(message: str, type: str, code: str | None) -> bytes   an in-band error event
        close() -> bytes                            trailing bytes (e.g. Chat's "data: [DONE]")

Upstream-only protocols (Gemini, Bedrock) implement the upstream half in their adaptor package.
"""

from __future__ import annotations

from types import ModuleType


def converter(format_name: str) -> ModuleType:
    """The converter module of a wire format: "chat", "responses" or "messages"."""
    from importlib import import_module

    return import_module(f"relay.converters.{format_name}")
