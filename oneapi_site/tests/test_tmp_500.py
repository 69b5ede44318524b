import json, asyncio
import pytest
from django.test import Client
pytestmark = pytest.mark.django_db
def test_x():
    c = Client(raise_request_exception=True)
    bodies = [
        ("chat/completions", {"model": "0", "messages": [{"role": {}, "content": "", "tool_call_id": "0"}]}),
        ("messages", {"model": "0", "messages": [{"content": "0", "role": "user"}], "system": "", "tools": [], "tool_choice": {"type": "auto", "name": ""}, "thinking": {"budget_tokens": 1024, "type": "enabled"}, "max_tokens": 5, "stream": True, "top_k": 1, "stop_sequences": [], "metadata": {"user_id": ""}}),
    ]
    for path, body in bodies:
        try:
            r = c.post(f"/sandbox/v1/{path}", data=json.dumps(body), content_type="application/json")
            if r.streaming:
                async def col():
                    return b"".join([x async for x in r.streaming_content])
                print(path, r.status_code, asyncio.run(col())[:300])
            else:
                print(path, r.status_code, r.content[:300])
        except Exception as e:
            import traceback; traceback.print_exc()
