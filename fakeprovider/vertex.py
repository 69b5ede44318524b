"""Vertex AI mode of the fake provider: an OAuth token endpoint, Gemini and Claude models.

Routes (also behind the ``/s/<scenarios>`` prefix):

- ``POST /token``: Google's OAuth 2.0 token endpoint for the grants google-auth sends:
  ``urn:ietf:params:oauth:grant-type:jwt-bearer`` with a signed ``assertion`` (service accounts,
  https://developers.google.com/identity/protocols/oauth2/service-account#httprest) and
  ``refresh_token`` (authorized users). The JWT must have three base64url parts, a JSON header
  with ``alg`` RS256, and claims ``iss``, ``scope``, ``iat``, ``exp`` (at most an hour later)
  and ``aud``: Google's documented value "https://oauth2.googleapis.com/token" (what
  google-auth always sends, whatever the key's token_uri) or this endpoint's own URL. The
  signature is not checked (the fake does not know the key). Answers ``{"access_token": "fake-vertex-token-<n>", "expires_in": 3600, ...}``;
  errors in OAuth's shape ``{"error": "invalid_grant", "error_description": ...}``.
- ``POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent``
  and ``:streamGenerateContent`` (SSE with ``?alt=sse``): the Gemini mode's answers
  (:mod:`fakeprovider.gemini`), https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference.
- ``POST .../publishers/anthropic/models/{model}:rawPredict`` and ``:streamRawPredict``: Claude
  as on Vertex (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude):
  an Anthropic Messages body that must carry ``"anthropic_version": "vertex-2023-10-16"`` and no
  ``model`` (the model is in the URL); answered by the Anthropic mode (:mod:`fakeprovider.anthropic`:
  its validation, message objects and SSE events, https://docs.anthropic.com/en/api/messages-streaming).

Model routes need ``Authorization: Bearer fake-vertex-token-<n>``, a token this endpoint issued
in form (401 ``UNAUTHENTICATED`` otherwise); errors use Google's shape
``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any
from urllib.parse import parse_qs

import orjson
from aiohttp import web

from . import anthropic, gemini
from .common import COUNTER, Rules, prelude, record, screen, send_whole
from .scenarios import Scenario

__all__ = ["ANTHROPIC_VERSION", "ROUTES", "TOKEN_PREFIX"]

_JSON = "application/json"
TOKEN_PREFIX = "fake-vertex-token-"
ANTHROPIC_VERSION = "vertex-2023-10-16"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: "When making an access token request this value is always https://oauth2.googleapis.com/token"
#: (https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests).
GOOGLE_AUDIENCE = "https://oauth2.googleapis.com/token"


def _google_error(code: int, message: str, status: str) -> web.Response:
    body = orjson.dumps({"error": {"code": code, "message": message, "status": status}})
    return web.Response(body=body, status=code, content_type=_JSON)


_UNAUTHENTICATED = (401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
                         "cookie or other valid authentication credential. (fake)", "UNAUTHENTICATED")
_FORCED = {
    401: _UNAUTHENTICATED,
    429: (429, "Resource exhausted. Please try again later. Please refer to "
               "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details. (fake)",
          "RESOURCE_EXHAUSTED"),
    500: (500, "Internal error encountered. (fake)", "INTERNAL"),
    503: (503, "The service is currently unavailable. (fake)", "UNAVAILABLE"),
}


# --------------------------------------------------------------------------
# OAuth token endpoint
# --------------------------------------------------------------------------
def _oauth_error(error: str, description: str, status: int = 400) -> web.Response:
    body = orjson.dumps({"error": error, "error_description": description})
    return web.Response(body=body, status=status, content_type=_JSON)


def _b64json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def check_assertion(assertion: str, audience: str, now: float | None = None) -> str | None:
    """Why the JWT is not acceptable, or None when it is well-formed for `audience`."""
    parts = assertion.split(".")
    if len(parts) != 3 or not all(parts):
        return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
    try:
        header, claims = _b64json(parts[0]), _b64json(parts[1])
        base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        return "Invalid JWT: the segments are not base64url-encoded JSON"
    if not isinstance(header, dict) or header.get("alg") != "RS256":
        return "Invalid JWT: the header must name alg RS256"
    if not isinstance(claims, dict):
        return "Invalid JWT: the claims are not an object"
    for name in ("iss", "scope", "aud"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            return f"Invalid JWT: claim {name!r} missing"
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int):
        return "Invalid JWT: claims 'iat' and 'exp' must be integers"
    now = time.time() if now is None else now
    if not (iat - 300 <= now <= exp + 300) or exp - iat > 3600 or exp <= iat:
        return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe"
    if claims["aud"] not in (GOOGLE_AUDIENCE, audience):
        return f"Invalid JWT: audience {claims['aud']!r} is not {GOOGLE_AUDIENCE} nor this endpoint ({audience})"
    return None


def _token_forced(status: int) -> web.Response:
    if status == 401:
        return _oauth_error("invalid_client", "The OAuth client was not found. (fake)", 401)
    return _oauth_error("internal_failure" if status >= 500 else "rate_limit_exceeded", "fake error", status)


#: The token endpoint takes no credential but the assertion it checks below.
_TOKEN_RULES = Rules(scenario_error=lambda message: _oauth_error("invalid_request", message), forced=_token_forced)


async def token(request: web.Request) -> web.Response:
    raw = await request.read() if request.can_read_body else b""
    try:
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        form = {}
    record(request, form, query=True)
    sc = await screen(request, _TOKEN_RULES)
    if isinstance(sc, web.Response):
        return sc
    grant = form.get("grant_type")
    if grant == JWT_BEARER:
        audience = str(request.url.with_query(None))
        problem = check_assertion(form.get("assertion", ""), audience)
        if problem is not None:
            return _oauth_error("invalid_grant", problem)
    elif grant == "refresh_token":
        if not all(form.get(k) for k in ("refresh_token", "client_id", "client_secret")):
            return _oauth_error("invalid_request", "Missing required parameter: refresh_token, client_id or client_secret")
    else:
        return _oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant or ''}")
    access = f"{TOKEN_PREFIX}{next(request.app[COUNTER])}"
    return web.Response(content_type=_JSON, body=orjson.dumps({
        "access_token": access, "expires_in": 3600, "token_type": "Bearer",
    }))


# --------------------------------------------------------------------------
# Model routes: common prelude
# --------------------------------------------------------------------------
def _auth(request: web.Request) -> web.Response | None:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    suffix = credential.strip().removeprefix(TOKEN_PREFIX)
    if scheme.lower() != "bearer" or not credential.strip().startswith(TOKEN_PREFIX) or not suffix.isdigit():
        return _google_error(*_UNAUTHENTICATED)
    return None


_RULES = Rules(
    scenario_error=lambda message: _google_error(400, message, "INVALID_ARGUMENT"),
    forced=lambda status: _google_error(*_FORCED[status]),
    auth=_auth,
    bad_json=lambda: _google_error(400, "Invalid JSON payload received. Unexpected token.", "INVALID_ARGUMENT"),
    query=True,
)


async def _prelude(request: web.Request) -> tuple[Scenario, Any, str, str] | web.Response:
    """``(scenario, body, model, method)`` or the response that ends the request."""
    pre = await prelude(request, _RULES)
    if isinstance(pre, web.Response):
        return pre
    model, _, method = request.match_info["target"].rpartition(":")
    return *pre, model, method


# --------------------------------------------------------------------------
# Gemini on Vertex
# --------------------------------------------------------------------------
async def google_model(request: web.Request) -> web.StreamResponse:
    pre = await _prelude(request)
    if isinstance(pre, web.Response):
        return pre
    sc, body, model, method = pre
    if method not in ("generateContent", "streamGenerateContent") or not model:
        return _google_error(404, f"Method {method or '(none)'} is not found for publishers/google/models/{model}.",
                             "NOT_FOUND")
    try:
        plan = gemini.plan_generate(body, model, sc)
    except gemini.GeminiError as exc:
        return _google_error(exc.code, exc.message, exc.status)
    rid = f"fake-vertex-{next(request.app[COUNTER])}"
    if method == "streamGenerateContent":
        return await gemini._send_stream(request, gemini.stream_chunks(plan, rid, sc), sc, request.query.get("alt") == "sse")
    return await send_whole(request, gemini.response_body(plan, rid, sc), sc)


# --------------------------------------------------------------------------
# Claude on Vertex: the Anthropic mode's answers for Vertex's body
# --------------------------------------------------------------------------
async def anthropic_model(request: web.Request) -> web.StreamResponse:
    pre = await _prelude(request)
    if isinstance(pre, web.Response):
        return pre
    sc, body, model, method = pre
    if method not in ("rawPredict", "streamRawPredict") or not model:
        return _google_error(404, f"Method {method or '(none)'} is not found for publishers/anthropic/models/{model}.",
                             "NOT_FOUND")
    n = next(request.app[COUNTER])
    rid = f"req_vrtx_fake_{n}"
    # Model errors come back in Claude's own shape: rawPredict relays the model's answer.
    if not isinstance(body, dict):
        return anthropic.AnthropicError(400, "invalid_request_error", "Request body must be a JSON object.").response(rid)
    if body.get("anthropic_version") != ANTHROPIC_VERSION:
        message = f"anthropic_version: Input should be '{ANTHROPIC_VERSION}' on Vertex AI"
        return anthropic.AnthropicError(400, "invalid_request_error", message).response(rid)
    if "model" in body:
        message = "model: Extra inputs are not permitted (the model is in the URL on Vertex AI)"
        return anthropic.AnthropicError(400, "invalid_request_error", message).response(rid)
    try:
        plan = anthropic.plan_message({**body, "model": model}, sc)
    except anthropic.AnthropicError as exc:
        return exc.response(rid)
    mid = f"msg_vrtx_fake{n}"
    if method == "streamRawPredict" or body.get("stream") is True:
        return await anthropic._send_stream(request, plan, mid, sc, rid)
    return await send_whole(request, anthropic.message_body(plan, mid, sc), sc)


_MODELS = "/projects/{project}/locations/{location}/publishers"

#: (method, path, handler) for server.make_app, which also mounts them under /s/{scenario}.
ROUTES = [
    ("POST", "/token", token),
    *(("POST", f"/{version}{_MODELS}/google/models/{{target}}", google_model) for version in ("v1", "v1beta1")),
    *(("POST", f"/{version}{_MODELS}/anthropic/models/{{target}}", anthropic_model) for version in ("v1", "v1beta1")),
]
