"""LOG_PUSH_API: ERROR records leave through a bounded queue to the configured endpoint."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from oneapi_site.logpush import LogPushHandler, push_body
from relay.tests.helpers import wait_for


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], dict[str, object]]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint(settings) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.received = []
    settings.LOG_PUSH_API = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    settings.LOG_PUSH_TYPE = "one-api-alerts"
    settings.LOG_PUSH_TOKEN = "push-token"
    yield settings.LOG_PUSH_API
    server.shutdown()


def test_errors_are_pushed_with_type_and_token_once_per_message(endpoint):
    logger = logging.getLogger("test.logpush")
    handler = LogPushHandler()
    logger.addHandler(handler)
    try:
        logger.warning("not an error")
        try:
            raise RuntimeError("database went away")
        except RuntimeError:
            logger.exception("request %s failed", "abc")
        for _ in range(3):
            logger.error("channel %s failed its test", 7)  # the same message: pushed once a minute
        wait_for(lambda: handler.sent >= 2, timeout=5)
        time.sleep(0.3)
    finally:
        logger.removeHandler(handler)
    assert [body["message"] for _, body in Receiver.received][1:] == ["channel 7 failed its test"]
    headers, body = Receiver.received[0]
    assert headers["authorization"] == "Bearer push-token"
    assert body["type"] == "one-api-alerts" and body["token"] == "push-token" and body["level"] == "ERROR"
    assert body["message"].startswith("request abc failed") and "database went away" in body["message"]
    assert body["logger"] == "test.logpush" and body["host"]


def test_body_shapes_for_chat_webhooks():
    event = {"level": "ERROR", "logger": "relay", "message": "boom", "time": 1, "host": "web-1"}
    assert push_body("slack", "", event) == {"text": "[ERROR] web-1 relay: boom"}
    assert push_body("discord", "", event) == {"content": "[ERROR] web-1 relay: boom"}
    assert push_body("", "", event)["type"] == "one-api"


def test_a_down_endpoint_never_blocks_and_drops_beyond_the_queue(settings):
    settings.LOG_PUSH_API = "http://127.0.0.1:9/unreachable"
    handler = LogPushHandler()
    for i in range(1100):
        handler.emit(logging.LogRecord("x", logging.ERROR, __file__, 1, f"event {i}", None, None))
    wait_for(lambda: handler.dropped >= 100, timeout=10)
