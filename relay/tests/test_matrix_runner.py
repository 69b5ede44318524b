"""The regression matrix's variants, runner (retries, timeouts, concurrency), report and command,
against a small stdlib HTTP server standing in for a gateway."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from relay.matrix import runner
from relay.matrix.report import render
from relay.matrix.runner import backoff, run_matrix_sync
from relay.matrix.variants import JPEG_DATA_URL, VARIANTS, select_variants

GOOD_CHAT = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}}]}


class FakeGateway(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops concurrent connects

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.calls: dict[tuple[str, bool], int] = {}
        self.headers_seen: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeGateway

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = data["model"]
        srv = self.server
        with srv.lock:
            key = (model, bool(data.get("stream")))
            srv.calls[key] = count = srv.calls.get(key, 0) + 1
            srv.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            self._answer(model, count, data)
        finally:
            with srv.lock:
                srv.in_flight -= 1

    def _answer(self, model: str, count: int, data: dict[str, Any]) -> None:
        if model == "slow":
            time.sleep(1.5)
        if model == "busy":
            time.sleep(0.1)
        if model == "down" or (model == "flaky" and count <= 2):
            return self._send(502, {"error": {"message": "upstream unreachable", "type": "upstream_error"}})
        if model == "nochan":
            return self._send(503, {"error": {"message": "no channel", "code": "model_not_available"}})
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": "not here"}})
        if model == "broken":
            return self._send(200, {**GOOD_CHAT, "choices": []})
        if data.get("stream"):
            chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}]}
            raw = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
            return self._send(200, raw, "text/event-stream")
        return self._send(200, GOOD_CHAT)

    def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGateway]:
    monkeypatch.setattr(runner, "BACKOFF_START", 0.01)
    server = FakeGateway()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# ------------------------------------------------------------------------------------ variants
def test_twenty_variants_with_the_original_names() -> None:
    names = [v.name for v in VARIANTS]
    assert len(names) == len(set(names)) == 20
    assert {"chat-plain", "chat-plain-stream", "response-tools-stream", "claude-structured", "response-vision-stream"} <= set(names)
    assert [v.name for v in select_variants("chat,claude-tools")] == [
        "chat-plain", "chat-plain-stream", "chat-tools", "chat-tools-stream", "chat-structured", "chat-structured-stream",
        "claude-tools", "claude-tools-stream",
    ]
    assert len(select_variants("")) == 20 and len(select_variants(None)) == 20
    with pytest.raises(ValueError, match="no variant matches gemini"):
        select_variants("chat,gemini")


def test_payloads_force_the_tool_in_each_format() -> None:
    by_name = {v.name: v for v in VARIANTS}
    chat = by_name["chat-tools"].payload("m")
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["max_tokens"] == 1024 and chat["temperature"] == 0.7 and chat["stream"] is False
    resp = by_name["response-tools-stream"].payload("m")
    assert resp["tool_choice"] == {"type": "function", "name": "get_weather"} and resp["stream"] is True
    claude = by_name["claude-tools"].payload("m")
    assert claude["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert set(claude["tools"][0]["input_schema"]["properties"]) == {"location", "unit"}
    structured = by_name["claude-structured"].payload("m")
    assert structured["tool_choice"] == {"type": "tool", "name": "topic_classifier"} and structured["max_tokens"] == 512
    fmt = by_name["response-structured"].payload("m")["text"]["format"]
    assert (fmt["type"], fmt["name"], fmt["schema"]["required"]) == ("json_schema", "topic_classification", ["topic", "confidence"])
    rf = by_name["chat-structured"].payload("m")["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
    image = by_name["response-vision"].payload("m")["input"][0]["content"][1]
    assert image == {"type": "input_image", "image_url": JPEG_DATA_URL, "detail": "low"}
    assert by_name["claude-plain"].headers("k") == {"Content-Type": "application/json", "x-api-key": "k", "anthropic-version": "2023-06-01"}
    assert by_name["chat-plain"].headers("k")["Authorization"] == "Bearer k"


def test_embedded_jpeg_is_a_well_formed_baseline_jfif() -> None:
    raw = base64.b64decode(JPEG_DATA_URL.split(",", 1)[1])
    assert raw[:4] == b"\xff\xd8\xff\xe0" and raw[6:11] == b"JFIF\x00" and raw.endswith(b"\xff\xd9")
    sof = raw.index(b"\xff\xc0")
    assert raw[sof + 4] == 8 and raw[sof + 5:sof + 9] == b"\x00\x20\x00\x20" and raw[sof + 9] == 3  # 32x32, 3 components
    scan = raw[raw.index(b"\xff\xda") + 14:-2]
    assert all(scan[i + 1] == 0 for i in range(len(scan) - 1) if scan[i] == 0xFF)  # stuffed


# -------------------------------------------------------------------------------------- runner
def test_backoff_doubles_from_250ms_to_at_most_2s() -> None:
    assert [backoff(i) for i in (1, 2, 3, 4, 5)] == [0.25, 0.5, 1.0, 2.0, 2.0]


def test_retries_timeouts_and_skips(gateway: FakeGateway) -> None:
    models = ["good", "flaky", "down", "nochan", "slow", "broken"]
    run = run_matrix_sync(gateway.url, "sk-test", models, select_variants("chat-plain"), timeout=0.5)
    cells = {(r.model, r.variant): r for r in run.results}
    good = cells["good", "chat-plain"]
    assert (good.outcome, good.attempts, good.status) == ("PASS", 1, 200)
    assert cells["good", "chat-plain-stream"].outcome == "PASS"
    flaky = cells["flaky", "chat-plain"]
    assert (flaky.outcome, flaky.attempts) == ("PASS", 3)
    down = cells["down", "chat-plain"]
    assert (down.outcome, down.attempts, down.status) == ("SKIP", 4, 502)
    assert down.reason == "persistent 502: upstream unreachable"
    assert "  down / chat-plain: persistent 502: upstream unreachable (HTTP 502, 4 attempts)" in render(run)
    assert (cells["nochan", "chat-plain"].outcome, cells["nochan", "chat-plain"].attempts) == ("SKIP", 1)
    assert (cells["slow", "chat-plain"].outcome, cells["slow", "chat-plain"].reason) == ("FAIL", "timeout after 0.5s")
    assert (cells["broken", "chat-plain"].outcome, cells["broken", "chat-plain"].reason) == ("FAIL", "no choices")
    assert [(r.variant, r.model) for r in run.results] == [(v, m) for v in ("chat-plain", "chat-plain-stream") for m in models]
    assert (run.count("PASS"), run.count("FAIL"), run.count("SKIP")) == (4, 4, 4) and run.failed


def test_strict_counts_persistent_5xx_as_failure(gateway: FakeGateway) -> None:
    run = run_matrix_sync(gateway.url, "k", ["down"], select_variants("chat-plain-stream"), strict=True)
    assert [(r.outcome, r.attempts) for r in run.results] == [("FAIL", 4)]


def test_concurrency_is_bounded_and_claude_auth_uses_x_api_key(gateway: FakeGateway) -> None:
    run = run_matrix_sync(gateway.url, "sk-x", ["busy"], select_variants("chat-plain,response-plain,claude-plain"), concurrency=2)
    assert gateway.max_in_flight == 2
    by_outcome = {r.variant: r.outcome for r in run.results}
    assert by_outcome["chat-plain"] == "PASS" and by_outcome["claude-plain"] == "SKIP"  # the stub 404s other routes
    claude = [h for h in gateway.headers_seen if "x-api-key" in h]
    assert len(claude) == 2 and all(h["anthropic-version"] == "2023-06-01" and "authorization" not in h for h in claude)
    assert sum(1 for h in gateway.headers_seen if h.get("authorization") == "Bearer sk-x") == 4


# ----------------------------------------------------------------------------- report, command
def test_report_table_totals_and_full_failure_reasons(gateway: FakeGateway) -> None:
    run = run_matrix_sync(gateway.url, "k", ["good", "broken", "nochan"], select_variants("chat-plain"))
    run.results[1].reason = "a very long reason that goes on and on past the forty character limit"
    text = render(run)
    lines = text.splitlines()
    assert [c.strip() for c in lines[0].split(" | ")] == ["variant", "good", "broken", "nochan"]
    row = lines[2].split(" | ")
    assert row[0].strip() == "chat-plain" and row[1].startswith("PASS ") and row[1].strip().endswith("s")
    assert row[2].strip() == "FAIL a very long reason that goes on and on …" and len(row[2].strip()) == 45
    assert row[3].strip() == "SKIP no channel for model"
    assert "Totals: 2 passed, 2 failed, 2 skipped" in text
    failures = text.split("Failures:")[1].split("Skips:")[0]
    assert "broken / chat-plain: a very long reason that goes on and on past the forty character limit (HTTP 200)" in failures


def test_command_prints_table_writes_json_and_exits_1_on_failure(gateway: FakeGateway, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "m.json"
    call_command("regression_matrix", base_url=gateway.url + "/v1", key="k", models="good", variants="chat-plain", json_path=str(out))
    assert "Totals: 2 passed, 0 failed, 0 skipped" in capsys.readouterr().out
    raw = json.loads(out.read_text())
    assert raw["totals"] == {"passed": 2, "failed": 0, "skipped": 0}
    assert raw["results"][0]["model"] == "good" and raw["results"][0]["body"].startswith("{")

    with pytest.raises(CommandError, match="2 of 2 cell"):
        call_command("regression_matrix", f"--base-url={gateway.url}", "--key=k", "--models=broken", "--variants=chat-plain-stream,chat-plain")
    assert "Failures:" in capsys.readouterr().out


def test_command_rejects_missing_options_and_unknown_variants() -> None:
    with pytest.raises(CommandError, match="required"):
        call_command("regression_matrix", base_url="http://x", key="", models="m")
    with pytest.raises(CommandError, match="no variant matches bogus"):
        call_command("regression_matrix", base_url="http://x", key="k", models="m", variants="bogus")
