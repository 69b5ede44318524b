"""The real agent CLIs against the live gateway, each routed to an upstream of ANOTHER protocol.

* Claude Code speaks Anthropic Messages (``/v1/messages``); its model is served by an
  OpenAI-compatible Chat channel (type 8).
* The Codex CLI speaks OpenAI Responses (``/v1/responses``); its model is served by an
  Anthropic channel (type 14).

Both upstreams are the fake provider with the ``notools`` scenario: agent CLIs always send their
tool lists, and a plain text reply ends the agent's turn after one model call.

The CLIs are pinned npm packages in ``.cache/agents`` (``scripts/install_agents.sh``). Each runs
with a scratch HOME, every telemetry / update / non-essential switch off, and an HTTP(S) proxy
that refuses (and records) every connection to a host other than the loopback gateway, so a
CLI that tries to reach the internet fails fast and the test can say where it tried to go.
"""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from billing.models import ConsumeLog
from fakeprovider.content import reply_words

from .helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".cache" / "agents" / "node_modules" / ".bin"
PROMPT = "Say hello in one sentence."
REPLY_PREFIX = "Fake reply to:"  # the fake's text reply: this, then the start of the last user turn
CLI_TIMEOUT = 120


def agent_binary(name: str) -> Path:
    path = BIN / name
    assert path.exists(), f"{path} is missing: run scripts/install_agents.sh (installs the pinned agent CLIs)"
    return path


# ------------------------------------------------------------------------------------ helpers


class _RefusingProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.attempts: list[str] = []
        super().__init__(("127.0.0.1", 0), _RefusingHandler)


class _RefusingHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(4096).decode("latin-1").strip()
        if line:
            self.server.attempts.append(line)  # type: ignore[attr-defined]
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.fixture
def refusing_proxy() -> Iterator[_RefusingProxy]:
    """An HTTP(S) proxy that answers 403 to everything and records what was asked
    ("CONNECT host:443 HTTP/1.1" or "GET http://host/... HTTP/1.1")."""
    proxy = _RefusingProxy()
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def base_env(home: Path, proxy: _RefusingProxy) -> dict[str, str]:
    """A clean environment: no inherited API keys or config, external traffic through the refusing proxy."""
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "TMPDIR": str(home / "tmp"),
        "HTTP_PROXY": proxy_url,
        "HTTPS_PROXY": proxy_url,
        "http_proxy": proxy_url,
        "https_proxy": proxy_url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=CLI_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{args[0]} did not finish in {CLI_TIMEOUT} s\nstdout: {exc.stdout!r}\nstderr: {exc.stderr!r}") from None


def report(gateway: Any, fake: Any, model: str, proc: subprocess.CompletedProcess[str] | None,
           proxy: _RefusingProxy, extra: str = "") -> str:
    """Everything needed to tell a gateway bug from a CLI setup problem."""
    upstream = [
        {"path": r["path"], "body": json.dumps(r.get("body"))[:1500]}
        for r in fake.requests()
        if isinstance(r.get("body"), dict) and r["body"].get("model") == model
    ]
    logs = list(ConsumeLog.objects.filter(model_name=model).values("status_code", "quota", "prompt_tokens",
                                                                   "completion_tokens", "is_stream", "content"))
    parts = [
        extra,
        f"exit code: {proc.returncode}" if proc else "",
        f"stdout (tail):\n{proc.stdout[-4000:]}" if proc else "",
        f"stderr (tail):\n{proc.stderr[-4000:]}" if proc else "",
        f"external connection attempts (refused): {proxy.attempts}",
        f"ConsumeLog rows: {logs}",
        f"upstream requests for {model}: {upstream}",
        f"gateway log (tail):\n{gateway.log_tail(60)}",
    ]
    return "\n\n".join(p for p in parts if p)


def upstream_bodies(fake: Any, model: str) -> list[dict[str, Any]]:
    return [r["body"] for r in fake.requests() if isinstance(r.get("body"), dict) and r["body"].get("model") == model]


def last_user_turn(body: dict[str, Any]) -> str:
    """The last user message the upstream received (Chat or Anthropic shape), as JSON text."""
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    return json.dumps(users[-1]) if users else ""


def assert_billed(model: str) -> list[ConsumeLog]:
    logs = wait_for(lambda: list(ConsumeLog.objects.filter(model_name=model, status_code=200)), timeout=10)
    assert all(log.quota > 0 and log.prompt_tokens > 0 and log.completion_tokens > 0 for log in logs)
    return logs


@pytest.fixture
def raw_key(make_user, make_key):  # type: ignore[no-untyped-def]
    return make_key(make_user(quota=100_000_000))[1]


# ------------------------------------------------------------------------------------ Claude Code


def test_claude_code_through_chat_upstream(live_gateway, fake_provider, make_channel, raw_key, unique_model,
                                           refusing_proxy, tmp_path):
    """`claude -p` (Anthropic Messages) -> gateway -> OpenAI-compatible Chat upstream."""
    claude = agent_binary("claude")
    make_channel(unique_model, scenario="notools", type=8)
    home, work = tmp_path / "home", tmp_path / "work"
    for d in (home / "tmp", work):
        d.mkdir(parents=True)
    env = {
        **base_env(home, refusing_proxy),
        "ANTHROPIC_BASE_URL": live_gateway.url,
        "ANTHROPIC_API_KEY": raw_key,
        # The main model, the small/fast one (background tasks) and every alias it may resolve.
        "ANTHROPIC_MODEL": unique_model,
        "ANTHROPIC_SMALL_FAST_MODEL": unique_model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": unique_model,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": unique_model,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": unique_model,
        "CLAUDE_CODE_SUBAGENT_MODEL": unique_model,
        # No telemetry, error reports, auto-update or any other non-essential traffic.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CODE_ENABLE_TELEMETRY": "0",
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "API_TIMEOUT_MS": "30000",
    }
    args = [str(claude), "-p", PROMPT, "--output-format", "json", "--no-session-persistence"]
    proc = run_cli(args, env, work)
    why = report(live_gateway, fake_provider, unique_model, proc, refusing_proxy)
    assert proc.returncode == 0, why
    result = json.loads(proc.stdout)
    assert result.get("is_error") is False and result.get("subtype") == "success", why
    # Claude Code puts <system-reminder> blocks before the prompt in the user turn (and a system
    # turn after it), and the fake echoes the start of the last user turn: the exact reply is
    # computed from what the upstream received.
    bodies = upstream_bodies(fake_provider, unique_model)
    assert bodies and PROMPT in last_user_turn(bodies[-1]), why
    assert bodies[-1].get("tools"), why  # the agent's tool list survived the conversion
    assert result.get("result") == " ".join(reply_words(bodies[-1]["messages"])), why
    assert result["result"].startswith(REPLY_PREFIX), why
    assert_billed(unique_model)
    assert not refusing_proxy.attempts, why


# ------------------------------------------------------------------------------------ Codex CLI


CODEX_CONFIG = """\
model = "{model}"
model_provider = "oneapi"
approval_policy = "never"
sandbox_mode = "read-only"
check_for_update_on_startup = false

[model_providers.oneapi]
name = "One API for Django"
base_url = "{base_url}"
env_key = "ONEAPI_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"

[features]
plugins = false  # else it syncs the curated plugin marketplace: `git ls-remote https://github.com/openai/plugins`
"""


def test_codex_through_anthropic_upstream(live_gateway, fake_provider, make_channel, raw_key, unique_model,
                                          refusing_proxy, tmp_path):
    """`codex exec` (OpenAI Responses) -> gateway -> Anthropic upstream."""
    codex = agent_binary("codex")
    make_channel(unique_model, scenario="notools", type=14)
    home, work = tmp_path / "home", tmp_path / "work"
    codex_home = home / ".codex"
    for d in (home / "tmp", work, codex_home):
        d.mkdir(parents=True)
    (codex_home / "config.toml").write_text(CODEX_CONFIG.format(model=unique_model, base_url=live_gateway.url + "/v1"))
    env = {**base_env(home, refusing_proxy), "CODEX_HOME": str(codex_home), "ONEAPI_API_KEY": raw_key}
    args = [str(codex), "exec", "--strict-config", "--json", "--skip-git-repo-check", "--ephemeral", "--color", "never",
            "-C", str(work), PROMPT]
    proc = run_cli(args, env, work)
    why = report(live_gateway, fake_provider, unique_model, proc, refusing_proxy)
    assert proc.returncode == 0, why
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    messages = [e["item"].get("text", "") for e in events
                if e.get("type") == "item.completed" and e.get("item", {}).get("type") == "agent_message"]
    assert messages and messages[-1].startswith(REPLY_PREFIX), why
    bodies = upstream_bodies(fake_provider, unique_model)
    assert bodies and PROMPT in last_user_turn(bodies[-1]), why
    assert bodies[-1].get("tools"), why  # the agent's tool list survived the conversion
    assert_billed(unique_model)
    assert not refusing_proxy.attempts, why
