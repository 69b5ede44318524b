"""One attempt on one channel: build the upstream request, call it, relay the answer back.

Pass-through when the channel speaks the caller's format (the caller's bytes go out with only
the model name mapped); otherwise convert through the IR: caller format -> IR -> upstream
format, and the answer back the same way, stream events included.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import aiohttp
import orjson

from billing.pricing import Usage
from oneapi_site import conf

from . import builtin_tools, ir
from .adaptors import get_adaptor
from .adaptors.base import Adaptor
from .adaptors.capabilities import ConvertsEmbeddings
from .asgi_io import Responder
from .billing_flow import confirm_hold, extend_hold, settle_usage
from .context import RelayContext
from .converters import converter
from .errors import InvalidRequest, RelayError, UpstreamError
from .media import inline_remote_media
from .responses_state import completed_response, store_response
from .snapshot import ChannelEntry
from .streaming import ConvertingStream, Encoder, PassthroughStream
from .tokens import count_chat_prompt, count_ir_prompt, count_ir_response, count_text
from .upstream import open_upstream
from .upstream_client import UpstreamResponse
from .usage import usage_from_openai

ID_PREFIX = {"chat": "chatcmpl-", "messages": "msg_", "responses": "resp_"}


def ir_request(ctx: RelayContext) -> ir.Request:
    """The caller's request in IR, parsed once and only when a conversion needs it."""
    if ctx.ir_request is None:
        try:
            ctx.ir_request = converter(ctx.format.name).request_to_ir(ctx.payload)
        except ir.ConversionError as exc:
            raise InvalidRequest(str(exc), param=exc.param) from None
        ctx.ir_request.reasoning_format = ctx.reasoning_format
    return ctx.ir_request


def caller_encoder(ctx: RelayContext) -> Encoder:
    request = ctx.ir_request or ir.Request(model=ctx.model, stream=True)
    return converter(ctx.format.name).StreamEncoder(
        request=request,
        response_id=ID_PREFIX.get(ctx.format.name, "") + ctx.request_id,
        model=ctx.upstream_model or ctx.model,
        created=int(time.time()),
    )


def passthrough_body(ctx: RelayContext, adaptor: Adaptor, channel: ChannelEntry, wire: str) -> tuple[bytes, bool]:
    """The caller's body for an upstream of the same format; and whether the client asked for
    Chat's usage chunk itself (if not, and the gateway asks for it, it is hidden again)."""
    try:
        mended = adaptor.adapt_passthrough(ctx.payload, wire=wire, channel=channel)
    except ir.ConversionError as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None
    payload = ctx.payload if mended is None else mended
    client_wants_usage = True
    changes: dict[str, Any] = {} if mended is None else {"model": ctx.upstream_model}
    if ctx.upstream_model != ctx.model:
        changes["model"] = ctx.upstream_model
    if ctx.is_stream and wire == "chat":
        options = payload.get("stream_options")
        client_wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        if conf.settings.ENFORCE_INCLUDE_USAGE and not client_wants_usage:
            changes["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    if not changes:
        return ctx.body, client_wants_usage  # the caller's bytes, untouched
    return orjson.dumps({**payload, **changes}), client_wants_usage


async def converted_body(ctx: RelayContext, adaptor: Adaptor, channel: ChannelEntry, wire: str, out: Responder) -> bytes:
    request = ir_request(ctx)
    if (request.n or 1) > 1:
        raise InvalidRequest("n > 1 is only available when the model's channel speaks the same format", param="n")
    upstream = dataclasses.replace(request, include_usage=True)  # always ask a stream for usage
    upstream, dropped = builtin_tools.fit(upstream, wire=wire, model=ctx.upstream_model)
    if dropped:
        out.headers["x-oneapi-dropped-tools"] = ",".join(dropped)
    if adaptor.needs_inline_media:
        await inline_remote_media(upstream, keep=adaptor.reads_media_url)  # copy on write
    try:
        return orjson.dumps(adaptor.encode_request(upstream, model=ctx.upstream_model, wire=wire, channel=channel))
    except ir.ConversionError as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None


def embeddings_body(ctx: RelayContext, adaptor: Any) -> bytes:
    try:
        return orjson.dumps(adaptor.encode_embeddings(ctx.payload, model=ctx.upstream_model))
    except ir.ConversionError as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None


async def attempt_once(ctx: RelayContext, channel: ChannelEntry, out: Responder) -> None:
    adaptor = get_adaptor(channel.protocol)
    ctx.upstream_model = channel.model_mapping.get(ctx.model, ctx.model)
    endpoint = ctx.format.endpoint
    if endpoint == "embeddings":
        wire = "gemini" if isinstance(adaptor, ConvertsEmbeddings) else "embeddings"
    else:
        wire = adaptor.upstream_format(channel, ctx.format.name, model=ctx.upstream_model)
    # A chosen reasoning_format rewrites Chat's reasoning fields: that goes through the IR even
    # when the upstream speaks Chat too.
    passthrough = wire == ctx.format.name and ctx.reasoning_format is None
    if passthrough:
        body, client_wants_usage = passthrough_body(ctx, adaptor, channel, wire)
    elif endpoint == "embeddings":
        body, client_wants_usage = embeddings_body(ctx, adaptor), True
    else:
        body, client_wants_usage = await converted_body(ctx, adaptor, channel, wire, out), True
    url = adaptor.build_url(channel, endpoint, model=ctx.upstream_model, stream=ctx.is_stream, wire=wire)
    headers = await adaptor.authorize(channel, url=url, headers=adaptor.build_headers(channel, wire=wire), body=body)
    ctx.forwarded_at = time.monotonic()
    response = await open_upstream(url, headers, body)
    ctx.upstream_first_byte_at = time.monotonic()
    try:
        await confirm_hold(ctx)  # refused: the answer is dropped unread (release() closes the connection)
        if ctx.is_stream:
            if passthrough:
                stream: PassthroughStream | ConvertingStream = PassthroughStream(wire, drop_usage_chunk=not client_wants_usage)
            else:
                stream = ConvertingStream(adaptor.stream_decoder(wire=wire, model=ctx.upstream_model), caller_encoder(ctx))
            await relay_stream(ctx, response, out, stream)
        else:
            await relay_whole(ctx, response, out, adaptor, wire, passthrough)
    finally:
        response.release()


def passthrough_usage(wire: str, data: Any) -> Usage | None:
    if wire in ("chat", "embeddings"):
        usage = data.get("usage") if isinstance(data, dict) else None
        return usage_from_openai(usage) if isinstance(usage, dict) else None
    try:
        return converter(wire).response_to_ir(data).usage
    except Exception:  # an odd but valid answer must still reach the caller; usage is counted
        return None


async def relay_whole(
    ctx: RelayContext, response: UpstreamResponse | aiohttp.ClientResponse, out: Responder, adaptor: Adaptor, wire: str, passthrough: bool
) -> None:
    try:
        raw = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UpstreamError(f"the upstream connection failed mid-answer: {exc.__class__.__name__}", retryable=True) from None
    ctx.upstream_done_at = time.monotonic()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError("the upstream answered with invalid JSON", retryable=True) from None
    if passthrough:
        usage = passthrough_usage(wire, data) or Usage(prompt_tokens=estimate_prompt(ctx), completion_tokens=_count_chat_answer(data))
        body = raw
    elif ctx.format.name == "embeddings":
        data = adaptor.decode_embeddings(data, model=ctx.upstream_model, payload=ctx.payload)  # type: ignore[attr-defined]
        usage = passthrough_usage("embeddings", data) or Usage()
        body = orjson.dumps(data)
    else:
        try:
            answer = adaptor.decode_response(data, wire=wire, model=ctx.upstream_model)
        except (ir.ConversionError, KeyError, TypeError, ValueError) as exc:
            raise UpstreamError(f"the upstream's answer could not be read: {exc}", retryable=False) from None
        usage = answer.usage
        if not usage.prompt_tokens and not usage.completion_tokens:
            usage = Usage(prompt_tokens=estimate_prompt(ctx), completion_tokens=count_ir_response(answer))
        data = converter(ctx.format.name).response_from_ir(answer, ir_request(ctx))
        body = orjson.dumps(data)
    await settle_usage(ctx, usage)
    if ctx.format.name == "responses":
        await store_response(ctx, data)
    await out.send_json(200, body)


def _count_chat_answer(data: Any) -> int:
    total = 0
    for choice in (data.get("choices") or []) if isinstance(data, dict) else []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            total += count_text(message["content"])
    return total


def estimate_prompt(ctx: RelayContext) -> int:
    """Prompt tokens when the upstream reported none (a stream cut short, a client gone)."""
    if ctx.format.name == "chat":
        return count_chat_prompt(ctx.payload)
    try:
        return count_ir_prompt(ir_request(ctx))
    except RelayError:
        return len(ctx.body) // 4


async def relay_stream(ctx: RelayContext, response: UpstreamResponse | aiohttp.ClientResponse, out: Responder, stream: PassthroughStream | ConvertingStream) -> None:
    failure: RelayError | None = None
    delivered = 0  # output tokens forwarded to the client
    # Long answers are billed as they go: past 90% of the output the hold covers, hold more;
    # when that is refused the answer stops at that event, so the cost never exceeds the hold.
    extend_at = max(ctx.output_budget * 9 // 10, 1) if ctx.output_budget else None
    try:
        async for piece in response.content.iter_any():
            batch: list[bytes] = []
            for data, tokens in stream.feed(piece):
                if extend_at is not None and delivered + tokens >= extend_at:
                    failure = await extend_hold(ctx)
                    if failure is not None:
                        break
                    extend_at += ctx.output_budget
                batch.append(data)
                delivered += tokens
            if batch:
                if not out.started:
                    await out.start_stream()
                await out.write(b"".join(batch))
            if out.client_gone or failure is not None:
                break
        else:
            tail = stream.finish()
            if tail and not out.client_gone:
                if not out.started:
                    await out.start_stream()
                await out.write(b"".join(data for data, _ in tail))
                delivered += sum(tokens for _, tokens in tail)
    except (aiohttp.ClientError, TimeoutError) as exc:
        failure = UpstreamError(
            f"the upstream stream broke off before the answer was complete ({exc.__class__.__name__})", retryable=True
        )
    except asyncio.CancelledError:  # the server's shutdown deadline cut the stream: bill what was delivered
        if out.started:
            prompt = stream.prompt_usage.prompt_tokens if stream.prompt_usage else estimate_prompt(ctx)
            cut = Usage(prompt_tokens=prompt, completion_tokens=delivered)
            await asyncio.shield(settle_usage(ctx, cut, content="cut short by server shutdown"))
        raise
    ctx.upstream_done_at = time.monotonic()
    if failure is None and stream.error is not None:
        failure = UpstreamError(f"the upstream reported an error mid-answer: {stream.error.message}", retryable=True)
    if not out.started and not out.client_gone:
        # Nothing reached the client yet: this attempt can be retried on another channel.
        raise failure or UpstreamError("the upstream stream ended without any event", retryable=True)
    if failure is None and not stream.complete and not out.client_gone:
        failure = UpstreamError("the upstream stream ended before the answer was complete", retryable=False)
    if stream.usage is not None and failure is None and not out.client_gone:
        usage = stream.usage
    else:  # cut short: bill what the client received
        prompt = stream.prompt_usage.prompt_tokens if stream.prompt_usage else estimate_prompt(ctx)
        usage = Usage(prompt_tokens=prompt, completion_tokens=delivered)
    note = "client disconnected" if out.client_gone else (failure.message if failure else "")
    await settle_usage(ctx, usage, content=note)
    if out.client_gone:
        return
    if failure is None:
        end = stream.end_bytes()
        if ctx.format.name == "responses":
            await store_response(ctx, completed_response(end))
        await out.end(end)
        return
    encoder = stream.encoder if isinstance(stream, ConvertingStream) else caller_encoder(ctx)
    already_told = isinstance(stream, PassthroughStream) and stream.error_forwarded
    error = b"" if already_told else encoder.error(failure.message + f" (request id: {ctx.request_id})", failure.type, failure.code)
    await out.end(error + encoder.close())
