"""The regression matrix against a live gateway whose channel points at the fake provider.

For each upstream protocol the fake provider speaks, the gateway converts every caller format
(Chat, Responses, Claude Messages) to it and back: all 20 variants must PASS (no FAIL, no SKIP).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from relay.adaptors.vertex.tests.keys import service_account_json
from relay.matrix.variants import VARIANTS

pytestmark = pytest.mark.django_db(transaction=True)

# Channel settings for each upstream protocol the fake provider speaks.
VERTEX_KEY = "<a Vertex service-account key for the fake>"
UPSTREAMS: dict[str, dict[str, Any]] = {
    "openai-chat": {"type": 8},
    "openai-responses": {"type": 50, "config": {"api_format": "response"}},
    "anthropic": {"type": 14},
    "gemini": {"type": 24},
    # The original fork's published run failed structured output here; these must PASS.
    "deepseek-no-json-schema": {"type": 36, "scenario": "no_json_schema"},
    "azure": {"type": 3},
    "bedrock-claude": {"type": 33, "key": "AKIAFAKE|secret|us-east-1", "model_mapping": "anthropic.claude-fake-v1:0"},
    "bedrock-converse": {"type": 33, "key": "AKIAFAKE|secret|us-east-1", "model_mapping": "meta.llama-fake-v1:0"},
    # Vertex AI: a service-account key whose token_uri is the fake's OAuth endpoint.
    "vertex-gemini": {"type": 42, "key": VERTEX_KEY, "config": {"region": "us-east5"}, "model_mapping": "gemini-2.5-flash"},
    "vertex-claude": {"type": 42, "key": VERTEX_KEY, "config": {"region": "us-east5"}, "model_mapping": "claude-sonnet-4-5@20250929"},
}


@pytest.mark.parametrize("upstream", sorted(UPSTREAMS))
def test_every_variant_passes_through_the_gateway(
    live_gateway: Any, make_user: Any, make_key: Any, make_channel: Any, unique_model: str, tmp_path: Path, capsys: Any, fake_provider: Any,
    upstream: str,
) -> None:
    settings = dict(UPSTREAMS[upstream])
    if isinstance(settings.get("model_mapping"), str):
        settings["model_mapping"] = {unique_model: settings["model_mapping"]}
    if settings.get("key") == VERTEX_KEY:
        settings["key"] = service_account_json(fake_provider.base_url + "/token")
    make_channel(unique_model, **settings)
    _, raw = make_key(make_user())
    out = tmp_path / "matrix.json"

    call_command(
        "regression_matrix", base_url=live_gateway.url, key=raw, models=unique_model, timeout=20, json_path=str(out), verbosity=0
    )

    table = capsys.readouterr().out
    results = json.loads(out.read_text())["results"]
    assert [r["variant"] for r in results] == [v.name for v in VARIANTS]
    not_passed = {r["variant"]: r["reason"] for r in results if r["outcome"] != "PASS"}
    assert not_passed == {}, table
    assert all(r["status"] == 200 and r["attempts"] == 1 for r in results)
    assert "Totals: 20 passed, 0 failed, 0 skipped" in table


def test_a_model_without_channel_is_skipped_not_failed(live_gateway: Any, make_user: Any, make_key: Any, unique_model: str,
                                                       capsys: Any) -> None:
    _, raw = make_key(make_user())

    call_command("regression_matrix", base_url=live_gateway.url + "/v1", key=raw, models=unique_model,
                 variants="chat-plain,response-plain,claude-plain", timeout=20, verbosity=0)

    table = capsys.readouterr().out
    assert "Totals: 0 passed, 0 failed, 6 skipped" in table, table
    assert table.count("SKIP no channel for model") == 6
