"""Linux /proc readers: CPU seconds and RSS of a process tree (no psutil needed)."""

from __future__ import annotations

import os

__all__ = [
    "cpu_delta", "cpu_seconds", "descendants", "group_cpu_seconds", "machine_busy_seconds", "matching", "rss_mib",
    "steal_seconds",
    "thread_cpu_seconds", "tree", "tree_cpu_seconds",
]  # fmt: skip

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rfind(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """All live descendants of *root* (children, grandchildren, ...), from one /proc scan."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(name))  # fields[1] = ppid
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def tree(root: int) -> list[int]:
    """*root* and its descendants."""
    return [root, *descendants(root)]


def cpu_seconds(pid: int) -> float:
    """user + system CPU of one process (all its threads); 0.0 if it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the command name: state(0) ppid(1) ... utime(11) stime(12), i.e. fields 14/15 of stat(5).
    return (int(fields[11]) + int(fields[12])) / _TICKS


def tree_cpu_seconds(root: int) -> dict[int, float]:
    """CPU seconds per live process of the tree, keyed by pid (diff two samples per pid)."""
    return {pid: cpu_seconds(pid) for pid in tree(root)}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two samples; processes that appeared count from zero."""
    return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items())


def rss_mib(pid: int) -> float:
    """Resident set size in MiB (0.0 if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (user+nice+system+irq+softirq+steal)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def steal_seconds() -> float:
    """CPU seconds the hypervisor gave to other guests while this VM wanted to run, since boot."""
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) / _TICKS


def matching(needle: str) -> list[int]:
    """Pids whose command line (process title) contains *needle*, e.g. one database's backends."""
    found: list[int] = []
    raw = needle.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if raw in f.read().replace(b"\0", b" "):
                    found.append(int(name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def group_cpu_seconds(group: dict[str, object]) -> dict[int, float]:
    """CPU per pid of a process group given as ``{"tree": root_pid}`` or ``{"match": "title substring"}``."""
    if "tree" in group:
        return tree_cpu_seconds(int(str(group["tree"])))
    return {pid: cpu_seconds(pid) for pid in matching(str(group["match"])) if pid != os.getpid()}


def thread_cpu_seconds(pid: int) -> dict[int, tuple[str, float, float]]:
    """tid -> (thread name, seconds on a CPU, seconds runnable but waiting for a CPU) from schedstat."""
    found: dict[int, tuple[str, float, float]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                run_ns, wait_ns = (int(x) for x in f.read().split()[:2])
        except (FileNotFoundError, ProcessLookupError):
            continue
        found[int(tid)] = (name, run_ns / 1e9, wait_ns / 1e9)
    return found
