"""LOG_PUSH_API: error events pushed to an external endpoint (alerting), off every request path.

A logging handler (wired in settings.LOGGING for ERROR records when LOG_PUSH_API is set): emit()
only puts the formatted event on a bounded queue; one daemon thread per process POSTs them.
When the endpoint is slow or down, events beyond the queue are dropped and counted, never
blocking a request. The same message is pushed at most once per DEDUP_SECONDS, so a failing
upstream does not turn into an alert storm. Whatever is queued at exit gets a short drain.

Body, chosen by LOG_PUSH_TYPE: "slack" -> {"text"}, "discord" -> {"content"}, anything else ->
a JSON event {type, level, logger, message, time, host}. LOG_PUSH_TOKEN goes in
`Authorization: Bearer` (and in the generic event as "token", as the original's pusher sent it).
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import socket
import threading
import time
import urllib.request
from typing import Any

from django.conf import settings

QUEUE_SIZE = 1000
DEDUP_SECONDS = 60.0
TIMEOUT_SECONDS = 5.0


def push_body(kind: str, token: str, event: dict[str, Any]) -> dict[str, Any]:
    text = f"[{event['level']}] {event['host']} {event['logger']}: {event['message']}"
    if kind.lower() == "slack":
        return {"text": text}
    if kind.lower() == "discord":
        return {"content": text[:2000]}  # Discord's message limit
    body = {"type": kind or "one-api", **event}
    if token:
        body["token"] = token
    return body


class LogPushHandler(logging.Handler):
    def __init__(self, level: int = logging.ERROR) -> None:
        super().__init__(level)
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._recent: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0
        self.sent = 0
        self._host = socket.gethostname()
        atexit.register(self.drain, 2.0)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({record.exc_info[0].__name__ if record.exc_info[0] else 'error'}: {record.exc_info[1]})"
            now = time.monotonic()
            if now - self._recent.get(message, -DEDUP_SECONDS) < DEDUP_SECONDS:
                return
            if len(self._recent) > 1000:
                self._recent.clear()
            self._recent[message] = now
            event = {
                "level": record.levelname,
                "logger": record.name,
                "message": message[:4000],
                "time": int(record.created),
                "host": self._host,
            }
            self._ensure_thread()
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
        except Exception:
            self.handleError(record)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="log-push", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            self._post(event)

    def _post(self, event: dict[str, Any]) -> None:
        api = settings.LOG_PUSH_API
        if not api:
            return
        body = json.dumps(push_body(settings.LOG_PUSH_TYPE, settings.LOG_PUSH_TOKEN, event)).encode()
        request = urllib.request.Request(api, data=body, method="POST", headers={"Content-Type": "application/json"})
        if settings.LOG_PUSH_TOKEN:
            request.add_header("Authorization", f"Bearer {settings.LOG_PUSH_TOKEN}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (operator's URL)
                response.read(1024)
            self.sent += 1
        except Exception:  # never log from here: that would feed this very handler
            self.dropped += 1

    def drain(self, timeout: float) -> None:
        """Give queued events up to `timeout` seconds to leave (at exit)."""
        deadline = time.monotonic() + timeout
        while not self._queue.empty() and time.monotonic() < deadline and self._thread is not None and self._thread.is_alive():
            time.sleep(0.05)
