"""Start/stop the fake provider as a child process (for tests and benchmarks).

A real process (rather than an in-process server) keeps the provider's event
loop and CPU off the gateway's, which is what benchmarks need, and works the
same from sync test code, async test code and Django's test runner.

    with start_fake_provider() as fp:
        client = OpenAI(base_url=fp.base_url + "/v1", api_key="x")
        ...
        assert fp.requests()[-1]["body"]["model"] == "gpt-4o-mini"
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = ["FakeProvider", "FakeProviderError", "start_fake_provider"]

READY_TIMEOUT = 15.0
_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)


class FakeProviderError(RuntimeError):
    """The child process did not come up (or died) in time."""


class FakeProvider:
    """Handle on a running ``python -m fakeprovider`` child process."""

    def __init__(self, proc: subprocess.Popen[str], host: str, port: int) -> None:
        self.proc = proc
        self.host = host
        self.port = port
        self.base_url = f"http://{host}:{port}"

    # -- lifecycle ---------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the child and wait; SIGKILL if it does not exit in *timeout*."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<FakeProvider {self.base_url} pid={self.proc.pid}>"

    # -- helpers -----------------------------------------------------------
    def url(self, path: str = "", scenario: str | None = None) -> str:
        """Absolute URL, e.g. ``url("/v1", "429,timeout=1")`` -> ``.../s/429,timeout=1/v1``."""
        prefix = f"/s/{scenario}" if scenario else ""
        return f"{self.base_url}{prefix}{path}"

    def _call(self, method: str, path: str) -> Any:
        req = urllib.request.Request(self.base_url + path, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def requests(self) -> list[dict[str, Any]]:
        """The recorded requests (oldest first, at most 1000)."""
        return self._call("GET", "/_requests")

    def clear(self) -> None:
        """Forget the recorded requests."""
        self._call("DELETE", "/_requests")

    def health(self) -> bool:
        return bool(self._call("GET", "/_health").get("ok"))


def start_fake_provider(port: int = 0, record: bool = True, host: str = "127.0.0.1") -> FakeProvider:
    """Spawn the provider and block until it printed ``READY <port>`` (15 s max)."""
    cmd = [sys.executable, "-m", "fakeprovider", "--host", host, "--port", str(port)]
    if not record:
        cmd.append("--no-record")
    env = dict(os.environ)
    # Make the package importable whatever the caller's cwd is.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the provider never touches Django
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)

    # Read the first line on a thread: portable timeout without select() on pipes.
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=READY_TIMEOUT)
    except queue.Empty:
        line = ""
    parts = line.split()
    if len(parts) != 2 or parts[0] != "READY" or not parts[1].isdigit():
        FakeProvider(proc, host, port).stop(timeout=2.0)
        raise FakeProviderError(f"fake provider did not become ready (exit={proc.returncode}, line={line!r})")
    return FakeProvider(proc, host, int(parts[1]))
