"""Fixtures for the MCP gateway tests: an upstream MCP server process on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_SCRIPT = Path(__file__).with_name("upstream_server.py")


@dataclass(frozen=True)
class Upstream:
    url: str
    token: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def mcp_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    port, token = _free_port(), "upstream-secret-token"
    log = tmp_path_factory.mktemp("mcp-upstream") / "server.log"
    process = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), str(port), token], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError("MCP upstream exited:\n" + log.read_text(errors="replace"))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("MCP upstream did not start:\n" + log.read_text(errors="replace")) from None
            time.sleep(0.1)
    yield Upstream(url=f"http://127.0.0.1:{port}/mcp", token=token)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
