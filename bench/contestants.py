"""The gateway's two opponents: nginx serving fixed bodies ("direct") and LiteLLM proxy.

- nginx (Debian's, installed with apt-get when missing) runs as its own unprivileged process
  (``nobody`` when we are root) with a config written here, ``daemon off``, on a loopback port.
  It answers POST on ``/json/...`` with a recorded chat.completion, on ``/sse/...`` with a
  recorded 24-chunk SSE stream (usage chunk, then ``[DONE]``), and on ``/big/...`` with a large
  generated SSE stream (the --big-stream mode). The bodies are recorded from the fake provider at
  start, so they are what a real OpenAI-compatible upstream sends.
- LiteLLM proxy (``litellm[proxy]`` from PyPI) in its own virtualenv, bench/.venv-litellm, made on
  first use; configured with the same upstream (``openai/gpt-4o-mini`` with ``api_base`` =
  nginx), a master key, no database, ``--num_workers`` = cores (its production guide: match the
  uvicorn workers to the CPU count), started with its CLI.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from servers import BenchError, free_port, stop_group, tail

BENCH = Path(__file__).resolve().parent
LITELLM_VENV = BENCH / ".venv-litellm"
UPSTREAM_MODEL = "gpt-4o-mini"
#: model name the clients ask for -> path prefix on nginx serving its fixed answer
NGINX_MODELS = {"bench-json": "/json", "bench-sse": "/sse", "bench-big": "/big"}
PROMPT = [{"role": "user", "content": "Say hello in one sentence."}]


def post(url: str, body: dict[str, object], key: str = "sk-upstream", timeout: float = 10.0) -> tuple[int, bytes]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:
        return 0, repr(exc).encode()


def record_bodies(fake_base_url: str, dest: Path) -> None:
    """chat.json and chat.sse, as the fake provider answers a 24-word chat (stream with usage)."""
    url = f"{fake_base_url}/s/words=24/v1/chat/completions"
    base = {"model": UPSTREAM_MODEL, "messages": PROMPT}
    status, plain = post(url, base)
    status2, sse = post(url, {**base, "stream": True, "stream_options": {"include_usage": True}})
    events = [e for e in sse.split(b"\n\n") if e.strip()]
    if status != 200 or status2 != 200 or b'"choices"' not in plain or events[-1] != b"data: [DONE]":
        raise BenchError(f"recording the upstream bodies failed: HTTP {status}/{status2}")
    content = [e for e in events if b'"content":"' in e and b'"role"' not in e]
    if len(content) != 24 or b'"usage":{' not in events[-2]:
        raise BenchError(f"recorded stream has {len(content)} content chunks (want 24) or no usage chunk")
    (dest / "chat.json").write_bytes(plain)
    (dest / "chat.sse").write_bytes(sse)


def write_big_sse(dest: Path, megabytes: int) -> int:
    """A ``megabytes`` MB chat stream built from the recorded chunks; returns its content chunk count."""
    events = [e for e in (dest / "chat.sse").read_bytes().split(b"\n\n") if e.strip()]
    role, piece, finish, usage = events[0], json.loads(events[1][6:]), events[-3], json.loads(events[-2][6:])
    piece["choices"][0]["delta"]["content"] = " lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do."
    chunk = b"data: " + json.dumps(piece, separators=(",", ":")).encode() + b"\n\n"
    count = megabytes * 1_000_000 // len(chunk)
    usage["usage"].update(completion_tokens=count * 16, total_tokens=count * 16 + usage["usage"]["prompt_tokens"])
    with (dest / "big.sse").open("wb") as f:
        f.write(role + b"\n\n")
        block = chunk * 1000
        for _ in range(count // 1000):
            f.write(block)
        f.write(chunk * (count % 1000))
        f.write(
            finish + b"\n\n" + b"data: " + json.dumps(usage, separators=(",", ":")).encode() + b"\n\ndata: [DONE]\n\n"
        )
    return count


def ensure_debian_package(command: str, package: str) -> str:
    """The path of `command`, installing Debian's `package` with apt-get when it is missing."""
    found = shutil.which(command) or (f"/usr/sbin/{command}" if Path(f"/usr/sbin/{command}").exists() else None)
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchError(f"{command} is not installed and we are not root: run `sudo apt-get install -y {package}`")
    print(f"bench: installing {package} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", package]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode:
            raise BenchError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return shutil.which(command) or f"/usr/sbin/{command}"


def ensure_nginx() -> str:
    return ensure_debian_package("nginx", "nginx")


NGINX_CONF = """worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  keepalive_requests 100000000; keepalive_timeout 300s; client_body_buffer_size 1m;
  sendfile on; tcp_nodelay on; open_file_cache max=16; etag off;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    # The static module refuses POST (405); error_page re-serves the same file as GET.
{locations}
  }}
}}
"""
LOCATION = "    location = {prefix}/v1/chat/completions {{ default_type {ctype}; alias {dir}/{name}; error_page 405 =200 $uri; }}"


class Nginx:
    """nginx serving the recorded bodies; its own temp dir (owned by nobody when we are root)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="oneapi-bench-nginx-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, model: str) -> str:
        return f"{self.base_url}{NGINX_MODELS[model]}/v1/chat/completions"

    def start(self) -> None:
        binary = ensure_nginx()
        self.port = free_port()
        files = {"/json": ("application/json", "chat.json"), "/sse": ("text/event-stream", "chat.sse"),
                 "/big": ("text/event-stream", "big.sse")}  # fmt: skip
        locations = "\n".join(LOCATION.format(prefix=p, ctype=c, dir=self.dir, name=n) for p, (c, n) in files.items())
        conf = self.dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=self.dir, port=self.port, locations=locations))
        cmd = [binary, "-p", str(self.dir), "-c", str(conf), "-e", str(self.dir / "error.log")]
        if os.geteuid() == 0:  # never run it as root: drop to nobody, who owns its directory
            nobody = pwd.getpwnam("nobody")
            for path in [self.dir, *self.dir.iterdir()]:
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            os.chmod(self.dir, 0o755)
            cmd = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 15
        while post(self.url("bench-json"), {})[0] != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"nginx did not start:\n{tail(self.dir / 'error.log')}")
            time.sleep(0.1)

    def version(self) -> str:
        done = subprocess.run([ensure_nginx(), "-v"], capture_output=True, text=True, timeout=10)
        return done.stderr.strip().replace("nginx version: ", "")

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, grace=5.0)
        shutil.rmtree(self.dir, ignore_errors=True)


class LiteLLM:
    """LiteLLM proxy from its own virtualenv, no database, pointing at nginx."""

    def __init__(self, tmp: Path, workers: int, spec: str) -> None:
        self.tmp = tmp
        self.workers = workers
        self.spec = spec
        self.key = "sk-litellm-bench"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = tmp / "litellm.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def ensure_venv(self) -> None:
        if (LITELLM_VENV / "bin" / "litellm").exists():
            return
        print(f"bench: creating {LITELLM_VENV} and installing {self.spec} (a few minutes)", flush=True)
        steps = [[sys.executable, "-m", "venv", str(LITELLM_VENV)],
                 [str(LITELLM_VENV / "bin" / "pip"), "install", "--quiet", self.spec]]  # fmt: skip
        for cmd in steps:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
            if done.returncode:
                raise BenchError(f"{' '.join(cmd)} failed:\n{done.stdout[-1500:]}\n{done.stderr[-2000:]}")

    def version(self) -> str:
        code = "import importlib.metadata as m; print(m.version('litellm'))"
        done = subprocess.run(
            [str(LITELLM_VENV / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60
        )
        return done.stdout.strip() or "?"

    def start(self, nginx: Nginx, ready_timeout: float = 240.0) -> None:
        self.ensure_venv()
        self.port = free_port()
        config = {  # JSON is YAML
            "model_list": [
                {"model_name": name, "litellm_params": {
                    "model": f"openai/{UPSTREAM_MODEL}", "api_base": f"{nginx.base_url}{prefix}/v1", "api_key": "sk-upstream"}}
                for name, prefix in NGINX_MODELS.items()
            ],
            "general_settings": {"master_key": self.key},
            "litellm_settings": {"set_verbose": False, "request_timeout": 600},
        }  # fmt: skip
        path = self.tmp / "litellm.yaml"
        path.write_text(json.dumps(config, indent=1))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS", "LITELLM", "DJANGO"))}
        env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR", PYTHONUNBUFFERED="1", NO_DOCS="True")
        cmd = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(path), "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--num_workers", str(self.workers)]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + ready_timeout
        streak, last = 0, "no answer yet"
        while streak < 5:  # 5 chat answers in a row (all workers up, lazy imports done)
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"LiteLLM not ready ({last}):\n{tail(self.log_path)}")
            status, body = post(self.url, {"model": "bench-json", "messages": PROMPT}, key=self.key)
            if status == 200 and b'"choices"' in body:
                streak += 1
                continue
            streak, last = 0, f"HTTP {status}: {body[:200].decode(errors='replace')}"
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, grace=10.0)
