"""Sending one attempt upstream and turning its failures into RelayErrors."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from .errors import UpstreamError, upstream_error_from_status
from .http import get_pool, get_session, proxy
from .upstream_client import UpstreamResponse, target

MAX_ERROR_BODY = 64 * 1024


async def open_upstream(url: str, headers: dict[str, str], body: bytes) -> UpstreamResponse | aiohttp.ClientResponse:
    """POST and return the response once its status is 2xx; raise UpstreamError otherwise."""
    try:
        via = proxy()
        to = None if via else target(url)
        if to is not None:
            response: UpstreamResponse | aiohttp.ClientResponse = await get_pool().post(to, headers, body)
        else:
            response = await get_session().post(url, data=body, headers=headers, proxy=via)
    except TimeoutError:
        raise UpstreamError("the upstream did not answer in time", status=504, retryable=True) from None
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"could not reach the upstream: {exc.__class__.__name__}", retryable=True) from None
    if response.status >= 400:
        try:
            raw = await response.content.read(MAX_ERROR_BODY)
        except (TimeoutError, aiohttp.ClientError):
            raw = b""
        finally:
            response.release()
        message, code, kind = parse_error_body(raw, response.status)
        error = upstream_error_from_status(response.status, message, code=code, type=kind)
        retry_after = response.headers.get("Retry-After")
        if retry_after and response.status == 429:
            error.headers["Retry-After"] = retry_after
        raise error
    return response


def parse_error_body(raw: bytes, status: int) -> tuple[str, str | None, str | None]:
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace").strip()[:300]
        return (f"upstream answered {status}" + (f": {text}" if text else "")), None, None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        # OpenAI/Anthropic: {"error": {"message", "type", "code"}}; Google: {"error": {"message",
        # "code", "status"}} (https://cloud.google.com/apis/design/errors#http_mapping)
        message = str(error.get("message") or f"upstream answered {status}")
        code = error.get("code")
        kind = error.get("type") or error.get("status")
        return message, (str(code) if code is not None else None), (str(kind) if kind else None)
    if isinstance(error, str):
        return error, None, None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        # AWS: {"message": "..."} with the kind in the x-amzn-ErrorType header.
        return data["message"], None, None
    return f"upstream answered {status}", None, None
