"""AWS Bedrock (channel type 33): Claude through InvokeModel, every other model through Converse.

- Claude (a modelId with "anthropic."): POST /model/{modelId}/invoke and
  /invoke-with-response-stream with the Anthropic Messages body minus `model` and `stream`,
  plus `anthropic_version: bedrock-2023-05-31`; the answer is Anthropic's message, the stream
  Anthropic's events inside event-stream frames. Keeps everything Claude has (thinking
  signatures, cache_control, beta fields) that Converse would flatten.
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html
- Other models: POST /model/{modelId}/converse and /converse-stream (relay.adaptors.bedrock.converse).
  https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
- Auth: AWS Signature Version 4 over the exact bytes sent, with botocore's signer
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html
  or, for a key without "|", a Bedrock API key sent as a bearer token
  https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys-use.html

Channel: key "AK|SK|REGION" (one-api's format) or "AK|SK|REGION|SESSION_TOKEN", or "AK|SK"
with config `region`; base URL defaults to https://bedrock-runtime.{region}.amazonaws.com.
The mapped model name is the modelId (a foundation model or an inference profile id such as
"us.anthropic.claude-..."); config `inference_profile_arn_map` {model: ARN} overrides it, and
config `bedrock_api` "converse" | "invoke" forces one API (an application inference profile ARN
does not say which model family it serves).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import yarl

from ... import ir
from ...converters import converter
from ...errors import UpstreamError
from ...snapshot import ChannelEntry
from ..base import Adaptor
from . import converse
from .stream import BedrockStreamDecoder

WIRE_CLAUDE = "bedrock-claude"
WIRE_CONVERSE = "bedrock-converse"
WIRE_AUTO = "bedrock"  # the model is not known yet: answers are recognised by their shape
ANTHROPIC_VERSION = "bedrock-2023-05-31"
# Anthropic body fields Bedrock refuses ("extraneous key [...] is not permitted"): the model is
# in the URL, streaming is the endpoint, the rest are features of Anthropic's own API.
_NOT_ON_BEDROCK = ("model", "stream", "service_tier", "container", "mcp_servers", "inference_geo", "speed", "diagnostics")


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    region: str
    access_key: str = ""
    secret_key: str = ""
    session_token: str | None = None
    api_key: str | None = None  # a Bedrock API key (bearer) instead of IAM keys


def credentials(channel: ChannelEntry) -> AwsCredentials:
    parts = [part.strip() for part in channel.key.strip().split("|")]
    configured = channel.config.get("region")
    region = configured.strip() if isinstance(configured, str) else ""
    if len(parts) >= 3 and parts[2]:
        region = parts[2]
    if not region:
        raise UpstreamError("the Bedrock channel has no region: use the key AK|SK|REGION or set config region", retryable=True)
    if len(parts) == 1 and parts[0]:
        return AwsCredentials(region=region, api_key=parts[0])
    if len(parts) > 4 or len(parts) < 2 or not parts[0] or not parts[1]:
        raise UpstreamError("the Bedrock channel key must be AK|SK|REGION (or AK|SK|REGION|SESSION_TOKEN)", retryable=True)
    token = parts[3] if len(parts) == 4 and parts[3] else None
    return AwsCredentials(region=region, access_key=parts[0], secret_key=parts[1], session_token=token)


def model_id(channel: ChannelEntry, model: str) -> str:
    arns = channel.config.get("inference_profile_arn_map")
    if isinstance(arns, dict):
        arn = arns.get(model)
        if isinstance(arn, str) and arn.strip():
            return arn.strip()
    return model


def is_claude(channel: ChannelEntry, model: str) -> bool:
    forced = channel.config.get("bedrock_api")
    if forced in ("converse", "invoke"):
        return forced == "invoke"
    return "anthropic." in model_id(channel, model) or "anthropic." in model


def model_path(model: str) -> str:
    """The modelId as one path segment. ':' stays literal: aiohttp (yarl) would turn "%3A"
    back into ':' on the wire, and the signature must cover the path exactly as sent; AWS
    canonicalises what it receives, so ':' and '%3A' are both valid when signed as sent.
    '/' (inside ARNs) must be escaped, and yarl keeps "%2F" as is."""
    return quote(model, safe=":")


class BedrockAdaptor(Adaptor):
    default_format = WIRE_CONVERSE
    needs_inline_media = True  # Converse and InvokeModel take image and document bytes only

    def native_formats(self, channel: ChannelEntry, *, model: str | None = None) -> frozenset[str]:
        return frozenset()  # no caller format is Bedrock's: always through the IR

    def upstream_format(self, channel: ChannelEntry, caller_format: str, model: str | None = None) -> str:
        if model is None:
            return WIRE_AUTO
        return WIRE_CLAUDE if is_claude(channel, model) else WIRE_CONVERSE

    @staticmethod
    def _wire(model: str, wire: str) -> str:
        """The API for this call. `wire` is what upstream_format chose; WIRE_AUTO (the relay did
        not say which model) falls back to the model name alone, the same in build_url and
        encode_request (which has no channel), so the body always matches the endpoint."""
        if wire in (WIRE_CLAUDE, WIRE_CONVERSE):
            return wire
        return WIRE_CLAUDE if "anthropic." in model else WIRE_CONVERSE

    def build_url(self, channel: ChannelEntry, endpoint: str, *, model: str, stream: bool, wire: str) -> str:
        if endpoint != "chat":
            raise UpstreamError(f"the Bedrock adaptor has no {endpoint} endpoint", retryable=True)
        base = channel.base_url or f"https://bedrock-runtime.{credentials(channel).region}.amazonaws.com"
        if self._wire(model, wire) == WIRE_CLAUDE:
            action = "invoke-with-response-stream" if stream else "invoke"
        else:
            action = "converse-stream" if stream else "converse"
        return f"{base.rstrip('/')}/model/{model_path(model_id(channel, model))}/{action}"

    def build_headers(self, channel: ChannelEntry, *, wire: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        creds = credentials(channel)
        if creds.api_key:
            headers["Authorization"] = f"Bearer {creds.api_key}"
        return headers

    async def authorize(self, channel: ChannelEntry, *, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        creds = credentials(channel)
        if creds.api_key:
            return headers
        return sign(creds, url, headers, body)

    def encode_request(
        self, request: ir.Request, *, model: str, wire: str, channel: ChannelEntry | None = None
    ) -> dict[str, Any]:
        """The body for `model`. `channel` (optional) adds its config `anthropic_beta` to Claude
        bodies; Bedrock takes beta flags in the body, not as a header."""
        request.model = model
        if self._wire(model, wire) == WIRE_CONVERSE:
            name = model + " " + (model_id(channel, model) if channel is not None else "")
            return converse.request_from_ir(request, claude="anthropic." in name or "claude" in name.lower())
        body = converter("messages").request_from_ir(request)
        for key in _NOT_ON_BEDROCK:
            body.pop(key, None)
        metadata = body.pop("metadata", None)
        if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
            body["metadata"] = {"user_id": metadata["user_id"]}  # the only metadata Bedrock takes
        beta = channel.config.get("anthropic_beta") if channel is not None else None
        if isinstance(beta, str):
            beta = [flag.strip() for flag in beta.split(",") if flag.strip()]
        if isinstance(beta, list) and beta:
            body["anthropic_beta"] = sorted({*body.get("anthropic_beta", []), *map(str, beta)})
        body["anthropic_version"] = ANTHROPIC_VERSION
        return body

    def decode_response(self, payload: Any, *, wire: str, model: str = "") -> ir.Response:
        if wire == WIRE_CONVERSE or (wire != WIRE_CLAUDE and isinstance(payload, dict) and "output" in payload):
            response = converse.response_to_ir(payload)
        else:
            response = converter("messages").response_to_ir(payload)
        response.model = response.model or model  # Converse answers do not name the model
        return response

    def stream_decoder(self, *, wire: str, model: str = "") -> BedrockStreamDecoder:
        return BedrockStreamDecoder(model)  # the frames' event types say which API answered


def sign(creds: AwsCredentials, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """`headers` plus Authorization, X-Amz-Date, X-Amz-Content-SHA256 (and X-Amz-Security-Token).
    X-Amz-Content-SHA256 is optional outside S3 but costs nothing and is signed too."""
    # Imported on first use: botocore is large, and channels with Bedrock API keys never sign.
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    # Sign the URL as aiohttp will send it (yarl normalises percent-escapes in the path).
    wire_url = str(yarl.URL(url))
    request = AWSRequest(
        method="POST",
        url=wire_url,
        data=body,
        headers={**headers, "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()},
    )
    SigV4Auth(Credentials(creds.access_key, creds.secret_key, creds.session_token), "bedrock", creds.region).add_auth(request)
    return {str(name): str(value) for name, value in request.headers.items()}
