"""`manage.py runall`: migrate, then run every Procfile process (web, worker, beat) together.

This is the embedded single-machine mode: SQLite, local-memory cache and a filesystem Celery
broker unless SQL_DSN / REDIS_CONN_STRING say otherwise. Ctrl-C or SIGTERM stops them all; if
one process exits, the others are stopped too, so a supervisor sees the failure.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def read_procfile(path: Path) -> dict[str, str]:
    processes: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


def expand(command: str, env: dict[str, str]) -> list[str]:
    """Expand ${NAME:-default} and $NAME like a POSIX shell would, without needing one."""
    command = _DEFAULTED.sub(lambda m: env.get(m.group(1)) or m.group(2), command)
    command = re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), ""), command)
    return shlex.split(command)


def reset_metrics_dir(path: Path) -> None:
    """Start from zero: files of processes from an earlier run would be added to the new ones."""
    path.mkdir(parents=True, exist_ok=True)
    for leftover in path.glob("*.db"):
        leftover.unlink()


class Command(BaseCommand):
    help = "Migrate, then run the web server, the Celery worker and Celery beat from the Procfile."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--only", default="", help="comma-separated Procfile entries to run (default: all)")
        parser.add_argument("--no-migrate", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=1)
        env = {**os.environ, "PORT": str(settings.PORT), "PYTHONUNBUFFERED": "1"}
        # One web worker per core (uvicorn reads WEB_CONCURRENCY), unless the operator chose.
        env.setdefault("WEB_CONCURRENCY", str(os.cpu_count() or 1))
        if settings.ENABLE_PROMETHEUS_METRICS:
            # Several web workers: each writes its metrics to files here, /metrics adds them up.
            metrics_dir = Path(env.get("PROMETHEUS_MULTIPROC_DIR") or Path(settings.DATA_DIR) / "prometheus")
            reset_metrics_dir(metrics_dir)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        bin_dir = Path(sys.executable).parent
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        wanted = {name for name in options["only"].split(",") if name}
        processes = {
            name: expand(command, env)
            for name, command in read_procfile(Path(settings.BASE_DIR) / "Procfile").items()
            if not wanted or name in wanted
        }
        children: dict[str, subprocess.Popen[bytes]] = {}
        for name, argv in processes.items():
            self.stdout.write(f"starting {name}: {' '.join(argv)}")
            children[name] = subprocess.Popen(argv, env=env, cwd=settings.BASE_DIR)
        self.stdout.write(f"One API is listening on http://127.0.0.1:{settings.PORT} (admin at /admin/)")
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children.values()):
                time.sleep(0.5)
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.terminate()
            deadline = time.monotonic() + settings.SHUTDOWN_TIMEOUT_SEC + 5
            for child in children.values():
                try:
                    child.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [name for name, child in children.items() if child.returncode not in (0, -signal.SIGTERM, None)]
        if failed and not stopping:
            raise SystemExit(f"stopped because {', '.join(failed)} exited")
