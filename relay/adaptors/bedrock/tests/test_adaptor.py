"""The Bedrock adaptor: channel keys, URLs, SigV4, Claude bodies, and the stream decoder on
InvokeModelWithResponseStream frames (Anthropic events inside) and exception frames."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import yarl

from channels_app.types import type_info
from relay import ir
from relay.adaptors import get_adaptor
from relay.adaptors.bedrock.adaptor import BedrockAdaptor, credentials
from relay.adaptors.bedrock.stream import BedrockStreamDecoder
from relay.errors import UpstreamError
from relay.snapshot import ChannelEntry

from . import helpers as h

ADAPTOR = BedrockAdaptor()
CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"


def channel(key: str = "AKIDEXAMPLE|wJalrXUtnFEMI/K7MDENG|us-west-2", base_url: str = "", **config: Any) -> ChannelEntry:
    return ChannelEntry(id=1, name="b", type=33, protocol="bedrock", base_url=base_url, key=key, model_mapping={},
                        config=config, priority=0, weight=1, enabled=True)


def test_registered() -> None:
    assert type_info(33).protocol == "bedrock"
    assert isinstance(get_adaptor("bedrock"), BedrockAdaptor)


def test_credentials() -> None:
    assert credentials(channel()).region == "us-west-2"
    creds = credentials(channel("AK|SK|eu-central-1|TOKEN"))
    assert (creds.access_key, creds.secret_key, creds.region, creds.session_token) == ("AK", "SK", "eu-central-1", "TOKEN")
    assert credentials(channel("AK|SK", region="ap-northeast-1")).region == "ap-northeast-1"
    assert credentials(channel("ABSKbedrockapikey", region="us-east-1")).api_key == "ABSKbedrockapikey"
    with pytest.raises(UpstreamError, match="no region"):
        credentials(channel("AK|SK"))
    with pytest.raises(UpstreamError, match="AK\\|SK\\|REGION"):
        credentials(channel("AK||us-east-1"))


def test_urls() -> None:
    ch = channel()
    assert ADAPTOR.native_formats(ch) == frozenset()
    assert ADAPTOR.upstream_format(ch, "chat", model=CLAUDE) == "bedrock-claude"
    assert ADAPTOR.upstream_format(ch, "messages", model="amazon.nova-pro-v1:0") == "bedrock-converse"
    assert ADAPTOR.upstream_format(ch, "chat") == "bedrock"  # model unknown: decided per call
    base = "https://bedrock-runtime.us-west-2.amazonaws.com/model/"
    assert ADAPTOR.build_url(ch, "chat", model=CLAUDE, stream=False, wire="bedrock-claude") == base + CLAUDE + "/invoke"
    assert ADAPTOR.build_url(ch, "chat", model=CLAUDE, stream=True, wire="bedrock") == base + CLAUDE + "/invoke-with-response-stream"
    assert ADAPTOR.build_url(ch, "chat", model="meta.llama3-70b-instruct-v1:0", stream=True, wire="bedrock") == (
        base + "meta.llama3-70b-instruct-v1:0/converse-stream")
    arn = "arn:aws:bedrock:us-west-2:123456789012:application-inference-profile/a1b2c3"
    mapped = channel(base_url="http://127.0.0.1:9/s/429", inference_profile_arn_map={"claude-app": arn}, bedrock_api="invoke")
    assert ADAPTOR.upstream_format(mapped, "chat", model="claude-app") == "bedrock-claude"
    url = ADAPTOR.build_url(mapped, "chat", model="claude-app", stream=False, wire="bedrock-claude")
    assert url == "http://127.0.0.1:9/s/429/model/arn:aws:bedrock:us-west-2:123456789012:application-inference-profile%2Fa1b2c3/invoke"
    assert str(yarl.URL(url)) == url  # aiohttp sends exactly this path, which is what gets signed
    with pytest.raises(UpstreamError):
        ADAPTOR.build_url(ch, "embeddings", model=CLAUDE, stream=False, wire="bedrock")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def verify_sigv4(url: str, headers: dict[str, str], body: bytes, secret: str) -> bool:
    """An independent SigV4 check (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html),
    computed from the path as it goes on the wire, canonicalised the way AWS does (encoded once more)."""
    auth = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                    r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$", headers["Authorization"])
    assert auth is not None
    _, day, region, service, signed, signature = auth.groups()
    lower = {k.lower(): v for k, v in headers.items()}
    lower["host"] = urlsplit(url).netloc
    canonical = "\n".join([
        "POST", quote(yarl.URL(url).raw_path, safe="/~"), "",
        "".join(f"{name}:{lower[name].strip()}\n" for name in signed.split(";")), signed,
        hashlib.sha256(body).hexdigest(),
    ])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", lower["x-amz-date"], scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), day), region), service), "aws4_request")
    return hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature)


def test_sigv4_headers() -> None:
    ch = channel("AKIDEXAMPLE|wJalrXUtnFEMI/K7MDENG|us-west-2|SESSIONTOKEN")
    url = ADAPTOR.build_url(ch, "chat", model=CLAUDE, stream=True, wire="bedrock-claude")
    body = b'{"anthropic_version":"bedrock-2023-05-31"}'
    headers = asyncio.run(ADAPTOR.authorize(ch, url=url, headers=ADAPTOR.build_headers(ch, wire="bedrock-claude"), body=body))
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-west-2/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, " in headers["Authorization"]
    assert re.fullmatch(r"\d{8}T\d{6}Z", headers["X-Amz-Date"])
    assert headers["X-Amz-Content-SHA256"] == hashlib.sha256(body).hexdigest()
    assert headers["X-Amz-Security-Token"] == "SESSIONTOKEN"
    assert headers["Content-Type"] == "application/json"
    assert verify_sigv4(url, headers, body, "wJalrXUtnFEMI/K7MDENG")
    assert not verify_sigv4(url, headers, body + b" ", "wJalrXUtnFEMI/K7MDENG")


def test_bedrock_api_key_is_a_bearer_token() -> None:
    ch = channel("ABSKkey123", region="us-east-1")
    headers = ADAPTOR.build_headers(ch, wire="bedrock-converse")
    assert headers["Authorization"] == "Bearer ABSKkey123"
    assert asyncio.run(ADAPTOR.authorize(ch, url="https://x/model/m/converse", headers=headers, body=b"{}")) == headers


def test_claude_body_is_the_anthropic_body_for_bedrock() -> None:
    request = ir.Request(model="ignored", messages=[ir.Message(role="user", parts=[ir.TextPart("Hi")])],
                         max_output_tokens=100, stream=True, user="user-7", include_usage=True)
    body = ADAPTOR.encode_request(request, model=CLAUDE, wire="bedrock-claude",
                                  channel=channel(anthropic_beta="context-1m-2025-08-07"))
    assert body == {
        "anthropic_version": "bedrock-2023-05-31",
        "anthropic_beta": ["context-1m-2025-08-07"],
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "metadata": {"user_id": "user-7"},
    }
    converse = ADAPTOR.encode_request(request, model="amazon.nova-lite-v1:0", wire="bedrock")
    assert converse == {"messages": [{"role": "user", "content": [{"text": "Hi"}]}], "inferenceConfig": {"maxTokens": 100}}


def test_decode_response_by_wire_or_shape() -> None:
    claude = ADAPTOR.decode_response(h.load("claude_invoke.json"), wire="bedrock")
    assert claude.model == "claude-3-5-sonnet-20240620" and claude.stop_reason == "tool_calls"
    assert claude.usage == ir.Usage(prompt_tokens=485, completion_tokens=54, cached_tokens=100)
    nova = ADAPTOR.decode_response(h.load("converse_text.json"), wire="bedrock", model="amazon.nova-pro-v1:0")
    assert nova.model == "amazon.nova-pro-v1:0" and nova.parts == [ir.TextPart("Hello! How can I help you today?")]


def stream(data: bytes, *, byte_by_byte: bool = True) -> list[ir.StreamEvent]:
    decoder = ADAPTOR.stream_decoder(wire="bedrock-claude")
    events: list[ir.StreamEvent] = []
    step = 1 if byte_by_byte else max(len(data), 1)
    for i in range(0, len(data), step):
        events += decoder.feed(data[i : i + step])
    return events + decoder.close()


def test_claude_stream_through_frames() -> None:
    data = h.claude_stream(h.load("claude_stream_text.json"))
    events = stream(data)
    assert events == stream(data, byte_by_byte=False)
    assert events == [
        ir.StreamStart(id="msg_bdrk_01Ak8x", model="claude-3-5-sonnet-20240620", usage=ir.Usage(prompt_tokens=14, completion_tokens=1)),
        ir.PartStart(0, "text"),
        ir.TextDelta(0, "Hello"),
        ir.TextDelta(0, " there!"),
        ir.PartStop(0),
        ir.StreamEnd(stop_reason="stop", usage=ir.Usage(prompt_tokens=14, completion_tokens=6)),
    ]


def test_claude_stream_cut_short() -> None:
    events = stream(h.claude_stream(h.load("claude_stream_text.json")[:4]))
    assert isinstance(events[-1], ir.StreamError)


@pytest.mark.parametrize(("name", "kind"), [
    ("throttlingException", "rate_limit_error"),
    ("modelStreamErrorException", "server_error"),
    ("validationException", "invalid_request_error"),
])
def test_exception_frames(name: str, kind: str) -> None:
    head = h.load("claude_stream_text.json")[:3]
    data = h.claude_stream(head) + h.exception(name, "Too many tokens, please wait.") + h.claude_stream(head[1:])
    events = stream(data)
    assert events[-1] == ir.StreamError(f"{name}: Too many tokens, please wait.", type=kind, code=name)
    assert sum(isinstance(e, ir.StreamError) for e in events) == 1  # nothing after the error


def test_crc_mismatch_is_a_stream_error() -> None:
    frames = h.load("converse_stream_tool.json")
    data = h.converse_stream(frames[:2]) + h.event(*frames[2], bad_message_crc=True) + h.converse_stream(frames[3:])
    events = stream(data)
    assert [type(e).__name__ for e in events] == ["StreamStart", "PartStart", "TextDelta", "StreamError"]
    assert "checksum" in events[-1].message  # type: ignore[union-attr]


def test_generic_error_message_and_bad_chunks() -> None:
    error = h.frame({":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}, b"")
    assert stream(error) == [ir.StreamError("InternalFailure: boom", type="server_error", code="InternalFailure")]
    bad = h.event("chunk", {"bytes": "not base64!"})
    assert stream(bad)[-1] == ir.StreamError("the upstream sent a chunk that is not base64 JSON")
    initial = h.event("initial-response", {})
    got = stream(initial + h.claude_stream(h.load("claude_stream_text.json")))
    assert isinstance(got[-1], ir.StreamEnd)


def test_decoder_is_the_same_for_any_wire() -> None:
    assert isinstance(ADAPTOR.stream_decoder(wire="bedrock-converse"), BedrockStreamDecoder)
