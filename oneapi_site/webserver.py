"""The web process: uvicorn, with each worker accepting on its own SO_REUSEPORT socket.

`python -m oneapi_site.webserver` takes uvicorn's command line (and its UVICORN_* and
WEB_CONCURRENCY variables) unchanged. One thing differs, when there are several workers:
uvicorn binds one listening socket and all its workers accept from it, so whichever worker
wakes first takes a burst of new connections, and keep-alive clients (SDKs, reverse proxies,
load balancers) then stay on that worker while the others idle. bench/RESULTS.md measured
100/0 CPU splits between two workers at 32 connections. Here every worker slot gets its own
socket in one SO_REUSEPORT group, and the kernel spreads new connections over the group by
hash (https://lwn.net/Articles/542629/), which is how nginx's `reuseport` spreads its workers.

The supervisor keeps the sockets open, so connections that arrive while a worker restarts
wait in its queue for the replacement instead of being refused. Everything else (health pings,
restarts, SIGTERM with the graceful-shutdown deadline, SIGHUP) is uvicorn's own supervisor.
"""

from __future__ import annotations

import importlib
import logging
import socket

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

logger = logging.getLogger("uvicorn.error")


def reuseport_socket(family: socket.AddressFamily, address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock


class ReusePortMultiprocess(Multiprocess):
    """uvicorn's worker supervisor, with one socket per worker slot instead of one for all."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        # uvicorn bound `sockets[0]` without SO_REUSEPORT, which proved the port free (so a
        # second gateway started on the same port still fails instead of sharing it). TCP
        # only: a Unix socket or an inherited fd is shared as uvicorn does.
        first = sockets[0]
        self._shared = sockets
        self._reuseport: tuple[socket.AddressFamily, tuple[str, int]] | None = None
        if first.family in (socket.AF_INET, socket.AF_INET6) and config.uds is None and config.fd is None:
            self._reuseport = (first.family, first.getsockname()[:2])
            first.close()
        self.slot_sockets = [self._new_slot_sockets() for _ in range(self.processes_num)]

    def _new_slot_sockets(self) -> list[socket.socket]:
        if self._reuseport is None:
            return self._shared
        return [reuseport_socket(*self._reuseport)]

    def _spawn(self, slot: int) -> Process:
        process = Process(self.config, self.slot_sockets[slot])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._spawn(slot) for slot in range(self.processes_num)]

    def restart_all(self) -> None:
        """SIGHUP: replace each worker, its replacement serving before the old one retires."""
        for slot, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._spawn(slot)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    logger.error("New worker [%s] was not ready in time; keeping [%s].", new.pid, old.pid)
                return
            old.terminate()
            old.join()
            self.processes[slot] = new

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for slot, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung, or already gone
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # It failed before serving (bad settings, database unreachable...): every
                # restart would fail the same way, so stop, as uvicorn does.
                logger.error("Worker [%s] failed to start, stopping.", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.info("Worker [%s] died; restarting it on its socket.", process.pid)
            self.processes[slot] = self._spawn(slot)

    def handle_ttin(self) -> None:
        logger.info("Received SIGTTIN, adding a worker.")
        self.slot_sockets.append(self._new_slot_sockets())
        self.processes_num += 1
        self.processes.append(self._spawn(len(self.processes)))

    def handle_ttou(self) -> None:
        if self.processes_num <= 1:
            logger.info("Already one worker; not removing it.")
            return
        logger.info("Received SIGTTOU, removing a worker.")
        self.processes_num -= 1
        process = self.processes.pop()
        process.terminate()
        process.join()
        sockets = self.slot_sockets.pop()
        if self._reuseport is not None:  # its own socket; the shared one stays open
            for sock in sockets:
                sock.close()


def main() -> None:
    # uvicorn.main.run() starts `Multiprocess(config, sockets=[sock])` for --workers > 1. (The
    # module, not `uvicorn.main`: the package re-exports the CLI function under that name.)
    cli = importlib.import_module("uvicorn.main")
    cli.Multiprocess = ReusePortMultiprocess
    cli.main(prog_name="python -m oneapi_site.webserver")


if __name__ == "__main__":
    main()
