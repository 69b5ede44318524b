"""The gateway's side of a benchmark run: fake provider, database, gateway; all torn down by close().

Every child is started in its own session (process group) so that close() can stop exactly the
processes this run started, and so that a Ctrl-C in the terminal reaches only bench/run.py,
which then cleans up in order. The gateway runs the Procfile's web command (uvicorn, one worker
per core through WEB_CONCURRENCY).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procstat import descendants, rss_mib

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHAT_BODY = json.dumps(
    {"model": "bench-json", "messages": [{"role": "user", "content": "Say hello in one sentence."}]}
).encode()
#: Quota of the benchmark's key and user: finite, so every request takes the hold/settle path.
QUOTA = 10**15

sys.path.insert(0, str(REPO))
from fakeprovider.process import FakeProvider, start_fake_provider  # noqa: E402
from oneapi_site.management.commands.runall import expand, read_procfile  # noqa: E402


class BenchError(RuntimeError):
    """Something the benchmark depends on failed; the message says what."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def stop_group(proc: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM the process group led by *proc* (started with start_new_session), then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
    try:  # leftovers of the group (e.g. workers of a supervisor that died first)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


def _role(pid: int) -> str:
    """'worker' for uvicorn's spawned workers, else what the command line says (resource tracker...)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "spawn_main" in cmdline:
        return "worker"
    if "resource_tracker" in cmdline:
        return "resource tracker"
    return cmdline[:40]


class Stack:
    """Fake provider + database (+ Redis) + uvicorn gateway for one benchmark run."""

    def __init__(self, tmp: Path, workers: int, pg: bool, pg_admin_dsn: str, redis_url: str, web: str = "") -> None:
        self.tmp = tmp
        self.workers = workers
        self.pg = pg
        self.pg_admin_dsn = pg_admin_dsn
        self.redis_url = redis_url
        self.web = web  # a web command line instead of the Procfile's
        self.token = "bench" + secrets.token_hex(12)
        self.log_path = tmp / "gateway.log"
        self.fake: FakeProvider | None = None
        self.gateway: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.dbname = f"oneapi_bench_{os.getpid()}_{int(time.time())}"
        self.probe_ok = 0  # successful gateway requests sent while waiting for readiness
        self.log_floor = 0  # log rows up to this id were prefilled, not answered
        self.command: list[str] = []
        self._cleanups: list[Callable[[], None]] = []

    # -- URLs -----------------------------------------------------------------------------
    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    @property
    def sql_dsn(self) -> str:
        return f"{self.pg_admin_dsn.rstrip('/').rsplit('/', 1)[0]}/{self.dbname}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"SQL_DSN", "SQLITE_PATH", "REDIS_CONN_STRING"}}
        env.pop("ONEAPI_TESTING", None)
        env.update(
            DJANGO_SETTINGS_MODULE="oneapi_site.settings",
            DATA_DIR=str(self.tmp / "data"),
            DEBUG="false",
            INITIAL_ROOT_PASSWORD=secrets.token_urlsafe(16),
            INITIAL_ROOT_TOKEN=self.token,
            RELAY_TIMEOUT="30",
            # The per-key and per-IP limits stay on (their cost is measured) but never refuse: the
            # defaults (480 requests per 180 s, as in the original) would stop a benchmark at once.
            GLOBAL_RELAY_RATE_LIMIT="1000000000",
            GLOBAL_API_RATE_LIMIT="1000000000",
            PYTHONPATH=str(REPO),
        )
        if self.pg:
            env["SQL_DSN"] = self.sql_dsn
            env["REDIS_CONN_STRING"] = self.redis_url
        return env

    # -- start ----------------------------------------------------------------------------
    def start_fake(self) -> None:
        self.fake = start_fake_provider(record=False)
        self._cleanups.append(self.fake.stop)

    def setup_database(self, upstreams: dict[str, str]) -> None:
        """Migrate; one channel per model name -> upstream base URL (each maps to gpt-4o-mini)."""
        if self.pg:
            import psycopg

            with psycopg.connect(self.pg_admin_dsn, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'CREATE DATABASE "{self.dbname}"')
            self._cleanups.append(self._drop_database)
            self._flush_redis()  # the benchmark's own Redis db: no stale cached keys or channels
            self._cleanups.append(self._flush_redis)
        run = dict(cwd=REPO, env=self.env(), capture_output=True, text=True, timeout=300)
        done = subprocess.run([str(BIN / "python"), "manage.py", "migrate", "--skip-checks"], **run)
        if done.returncode:
            raise BenchError(f"migrate failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        script = (
            "import django; django.setup()\n"
            "from channels_app.models import Channel\n"
            "from accounts.models import ApiKey, User\n"
            f"for model, url in {upstreams!r}.items():\n"
            "    Channel.objects.create(type=1, name='bench-' + model, key='sk-upstream', base_url=url,"
            " model_names=model, model_mapping={model: 'gpt-4o-mini'}, groups='default')\n"
            f"User.objects.update(quota={QUOTA})\n"
            f"assert ApiKey.objects.update(unlimited_quota=False, remain_quota={QUOTA}) == 1\n"
        )
        done = subprocess.run([str(BIN / "python"), "-c", script], **run)
        if done.returncode:
            raise BenchError(f"creating the channel failed:\n{done.stderr[-3000:]}")

    def prefill(self, rows: int) -> None:
        """`rows` settled charges and consume log rows before the run (bench/prefill.py)."""
        run = dict(cwd=REPO, env=self.env(), capture_output=True, text=True, timeout=1800)
        done = subprocess.run([str(BIN / "python"), str(REPO / "bench" / "prefill.py"), str(rows)], **run)
        if done.returncode:
            raise BenchError(f"prefilling the database failed:\n{done.stderr[-3000:]}")
        self.log_floor = int(done.stdout.strip().splitlines()[-1])

    def start_gateway(self, ready_timeout: float = 60.0) -> None:
        self.port = free_port()
        env = self.env()
        env.update(HOST="127.0.0.1", PORT=str(self.port), WEB_CONCURRENCY=str(self.workers))
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        self.command = expand(self.web or read_procfile(REPO / "Procfile")["web"], env)
        log = self.log_path.open("ab")
        self.gateway = subprocess.Popen(
            self.command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self._cleanups.append(self.stop_gateway)
        self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Until 5 real chat requests in a row succeeded (each on a new connection)."""
        assert self.gateway is not None
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        streak = 0
        while streak < 5:
            if self.gateway.poll() is not None:
                raise BenchError(f"gateway exited with {self.gateway.returncode}:\n{tail(self.log_path)}")
            if time.monotonic() > deadline:
                raise BenchError(f"gateway not ready after {timeout:.0f}s ({last}):\n{tail(self.log_path)}")
            status, body = self.chat_once()
            if status == 200 and b'"choices"' in body:
                streak += 1
                self.probe_ok += 1
                continue
            streak = 0
            last = f"HTTP {status}: {body[:300].decode(errors='replace')}"
            time.sleep(0.2)

    def chat_once(self) -> tuple[int, bytes]:
        req = urllib.request.Request(
            self.gateway_url,
            data=CHAT_BODY,
            headers={"Authorization": f"Bearer sk-{self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (OSError, urllib.error.URLError) as exc:
            return 0, repr(exc).encode()

    # -- measurements around the run ------------------------------------------------------
    def gateway_processes(self) -> list[tuple[int, str, float]]:
        """(pid, role, RSS MiB) of the uvicorn supervisor and its workers."""
        assert self.gateway is not None
        rows = [(self.gateway.pid, "main" if self.workers == 1 else "supervisor", rss_mib(self.gateway.pid))]
        rows += [(pid, _role(pid), rss_mib(pid)) for pid in descendants(self.gateway.pid)]
        return rows

    def count_logs(self, settle: float = 15.0) -> tuple[int, int]:
        """(all rows, consume rows) in `logs`, once the count stopped moving for 1 s."""
        previous: tuple[int, int] | None = None
        deadline = time.monotonic() + settle
        while True:
            current = self._count_logs_once()
            if current == previous or time.monotonic() > deadline:
                return current
            previous = current
            time.sleep(1.0)

    def _count_logs_once(self) -> tuple[int, int]:
        query = f"SELECT count(*), count(CASE WHEN type = 2 THEN 1 END) FROM logs WHERE id > {self.log_floor}"
        if self.pg:
            import psycopg

            with psycopg.connect(self.sql_dsn, connect_timeout=10) as conn:
                row = conn.execute(query).fetchone()
        else:
            conn = sqlite3.connect(self.tmp / "data" / "one-api.db", timeout=10)
            try:
                row = conn.execute(query).fetchone()
            finally:
                conn.close()
        assert row is not None
        return int(row[0]), int(row[1])

    # -- teardown -------------------------------------------------------------------------
    def stop_gateway(self) -> None:
        if self.gateway is not None:
            stop_group(self.gateway, grace=15.0)

    def _drop_database(self) -> None:
        import psycopg

        with psycopg.connect(self.pg_admin_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')

    def _flush_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_timeout=10, socket_connect_timeout=10)
        try:
            client.flushdb()
        finally:
            client.close()

    def close(self) -> None:
        """Undo everything, newest first; keep going when one step fails."""
        while self._cleanups:
            step = self._cleanups.pop()
            try:
                step()
            except Exception as exc:  # noqa: BLE001 -- cleanup must go on
                print(f"cleanup step {getattr(step, '__name__', step)} failed: {exc!r}", file=sys.stderr)
