"""The web process (`python -m oneapi_site.webserver`): uvicorn workers with one SO_REUSEPORT socket each."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "oneapi_site.webserver", "oneapi_site.tests.pid_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--no-access-log", "--timeout-graceful-shutdown", "2"],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _pids_over_connections(port: int, count: int) -> list[int]:
    """One request on each of `count` keep-alive connections opened together, as an SDK pool does."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(count)]
    try:
        for conn in conns:
            conn.connect()
        pids = []
        for _ in range(2):  # the second round proves the connections stay on their worker
            for conn in conns:
                conn.request("GET", "/")
                pids.append(int(conn.getresponse().read()))
        return pids
    finally:
        for conn in conns:
            conn.close()


def _wait_for_workers(port: int, workers: int, timeout: float = 30) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pids = set(_pids_over_connections(port, 32))
            if len(pids) == workers:
                return pids
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not {workers} workers serving after {timeout} s")


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = _free_port()
    process = _start(port, 2, tmp_path / "web.log")
    yield port, process, tmp_path / "web.log"
    # SIGTERM lets the supervisor stop its workers (a SIGKILL of it alone would leave them
    # running, orphaned, on a port later tests may pick); then the whole group, whatever is left.
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_connections_spread_over_the_workers_and_stay_there(server) -> None:  # type: ignore[no-untyped-def]
    port, _, _ = server
    _wait_for_workers(port, 2)
    # One worker is busy (its loop held for 1 s) when a pool of 32 keep-alive connections opens.
    # From a shared socket the idle worker would accept all 32 and keep them; with a socket per
    # worker the kernel hashes about half of them to the busy one, which serves them after.
    blocker = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    blocker.request("GET", "/block")
    time.sleep(0.2)
    pids = _pids_over_connections(port, 32)
    busy = int(blocker.getresponse().read())
    blocker.close()
    first, second = pids[:32], pids[32:]
    assert first == second  # keep-alive: each connection stays on the worker that accepted it
    counts = {pid: first.count(pid) for pid in set(first)}
    assert len(counts) == 2 and busy in counts, counts  # all on one of two sockets: chance 2**-31


def test_a_second_server_on_the_same_port_fails_instead_of_sharing_it(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port, _, _ = server
    _wait_for_workers(port, 2)
    second = _start(port, 2, tmp_path / "second.log")
    assert second.wait(timeout=30) == 3  # uvicorn's STARTUP_FAILURE
    assert "Address already in use" in (tmp_path / "second.log").read_text()


def test_a_killed_worker_is_replaced_on_its_socket_and_sigterm_stops_all(server) -> None:  # type: ignore[no-untyped-def]
    port, process, log = server
    before = _wait_for_workers(port, 2)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    after = _wait_for_workers(port, 2)
    assert victim not in after and len(after & before) == 1
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert "restarting it on its socket" in log.read_text(), log.read_text()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
