"""Hand-written OpenAPI 3.1 components for the relay routes, which are not DRF views: the three
caller formats, embeddings and the two error shapes (MCP's JSON-RPC is in `openapi_jsonrpc`).
They describe the wire formats the relay speaks, after the official references:
https://platform.openai.com/docs/api-reference/chat/create,
https://platform.openai.com/docs/api-reference/responses/create,
https://docs.anthropic.com/en/api/messages, https://platform.openai.com/docs/api-reference/embeddings.
Unlisted fields are allowed (formats grow; the relay passes through what it does not know), so
`additionalProperties` stays open.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def arr(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def string(**extra: Any) -> Schema:
    return {"type": "string", **extra}


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def const(value: str) -> Schema:
    return {"type": "string", "const": value}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


INT: Schema = {"type": "integer"}
COUNT: Schema = {"type": "integer", "minimum": 0}
NUMBER: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object"}
MODEL: Schema = {"type": "string", "minLength": 1, "description": "A model this key may use (GET /v1/models)."}
TEXT: Schema = {"type": "string", "maxLength": 2000}

# ----------------------------------------------------------------------------------------- errors

ERRORS: dict[str, Schema] = {
    "OpenAIError": obj(
        {
            "error": obj(
                {"message": string(), "type": string(), "param": nullable(string()), "code": nullable(string())},
                ("message", "type"),
            )
        },
        ("error",),
        description="OpenAI's error shape: every /v1 error except Claude Messages'.",
    ),
    "AnthropicError": obj(
        {"type": const("error"), "error": obj({"type": string(), "message": string()}, ("type", "message"))},
        ("type", "error"),
        description="Anthropic's error shape (/v1/messages, /v1/messages/count_tokens).",
    ),
}

# ----------------------------------------------------------------------------------------- chat

_CHAT_PART = {
    "oneOf": [
        obj({"type": const("text"), "text": TEXT}, ("type", "text")),
        obj(
            {
                "type": const("image_url"),
                "image_url": obj(
                    {"url": string(minLength=1, description="http(s) or data: URL"), "detail": enum("auto", "low", "high")},
                    ("url",),
                ),
            },
            ("type", "image_url"),
        ),
    ]
}
_CHAT_CONTENT = {"anyOf": [TEXT, arr(_CHAT_PART, minItems=1, maxItems=4)]}
_TOOL_CALL = obj(
    {
        "id": string(minLength=1),
        "type": const("function"),
        "function": obj({"name": string(minLength=1), "arguments": string()}, ("name", "arguments")),
    },
    ("id", "type", "function"),
)
_USAGE_CHAT = obj(
    {
        "prompt_tokens": COUNT,
        "completion_tokens": COUNT,
        "total_tokens": COUNT,
        "prompt_tokens_details": nullable(obj({"cached_tokens": COUNT})),
        "completion_tokens_details": nullable(obj({"reasoning_tokens": COUNT})),
    },
    ("prompt_tokens", "completion_tokens", "total_tokens"),
)
_FUNCTION_TOOL = obj(
    {
        "type": const("function"),
        "function": obj(
            {
                "name": string(pattern="^[a-zA-Z0-9_-]{1,64}$"),
                "description": TEXT,
                "parameters": ANY_OBJECT,
                "strict": nullable(BOOL),
            },
            ("name",),
        ),
    },
    ("type", "function"),
)

CHAT: dict[str, Schema] = {
    "ChatMessage": {
        "oneOf": [
            obj(
                {
                    "role": enum("system", "developer"),
                    "content": {"anyOf": [TEXT, arr(_CHAT_PART["oneOf"][0], minItems=1, maxItems=4)]},
                    "name": string(),
                },
                ("role", "content"),
            ),
            obj({"role": const("user"), "content": _CHAT_CONTENT, "name": string()}, ("role", "content")),
            obj(
                {"role": const("assistant"), "content": nullable(TEXT), "tool_calls": arr(_TOOL_CALL, maxItems=4)},
                ("role",),
            ),
            obj({"role": const("tool"), "content": TEXT, "tool_call_id": string(minLength=1)}, ("role", "content", "tool_call_id")),
        ]
    },
    "ChatCompletionRequest": obj(
        {
            "model": MODEL,
            "messages": arr(ref("ChatMessage"), minItems=1, maxItems=8),
            "stream": BOOL,
            "stream_options": obj({"include_usage": BOOL}),
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1},
            "max_tokens": {"type": "integer", "minimum": 1},
            "max_completion_tokens": {"type": "integer", "minimum": 1},
            "n": {"type": "integer", "minimum": 1, "maximum": 1},
            "stop": {"anyOf": [string(), arr(string(), maxItems=4)]},
            "tools": arr(_FUNCTION_TOOL, maxItems=8),
            "tool_choice": {
                "anyOf": [
                    enum("none", "auto", "required"),
                    obj(
                        {"type": const("function"), "function": obj({"name": string(minLength=1)}, ("name",))},
                        ("type", "function"),
                    ),
                ]
            },
            "parallel_tool_calls": BOOL,
            "response_format": {
                "oneOf": [
                    obj({"type": enum("text", "json_object")}, ("type",)),
                    obj(
                        {
                            "type": const("json_schema"),
                            "json_schema": obj(
                                {"name": string(pattern="^[a-zA-Z0-9_-]{1,64}$"), "schema": ANY_OBJECT, "strict": BOOL},
                                ("name",),
                            ),
                        },
                        ("type", "json_schema"),
                    ),
                ]
            },
            "reasoning_effort": enum("minimal", "low", "medium", "high"),
            "seed": INT,
            "user": string(),
        },
        ("model", "messages"),
        description="OpenAI Chat Completions request. The relay also accepts the other documented fields.",
    ),
    "ChatCompletion": obj(
        {
            "id": string(),
            "object": const("chat.completion"),
            "created": INT,
            "model": string(),
            "choices": arr(
                obj(
                    {
                        "index": COUNT,
                        "message": obj(
                            {
                                "role": const("assistant"),
                                "content": nullable(string()),
                                "refusal": nullable(string()),
                                "tool_calls": arr(_TOOL_CALL),
                            },
                            ("role",),
                        ),
                        "finish_reason": nullable(string()),
                        "logprobs": nullable(ANY_OBJECT),
                    },
                    ("index", "message"),
                )
            ),
            "usage": _USAGE_CHAT,
            "system_fingerprint": nullable(string()),
        },
        ("id", "object", "created", "model", "choices"),
    ),
    "ChatCompletionChunk": obj(
        {
            "id": string(),
            "object": const("chat.completion.chunk"),
            "created": INT,
            "model": string(),
            "choices": arr(
                obj({"index": COUNT, "delta": ANY_OBJECT, "finish_reason": nullable(string())}, ("index", "delta"))
            ),
            "usage": nullable(_USAGE_CHAT),
        },
        ("id", "object", "created", "model", "choices"),
        description="One `data:` event of a Chat Completions stream (the stream ends with `data: [DONE]`).",
    ),
}

# ----------------------------------------------------------------------------------------- responses

_INPUT_CONTENT = {
    "oneOf": [
        obj({"type": const("input_text"), "text": TEXT}, ("type", "text")),
        obj(
            {"type": const("input_image"), "image_url": string(minLength=1), "detail": enum("auto", "low", "high")},
            ("type", "image_url"),
        ),
        obj({"type": const("output_text"), "text": TEXT}, ("type", "text")),
    ]
}
_INPUT_ITEM = {
    "oneOf": [
        obj(
            {
                "type": const("message"),
                "role": enum("user", "assistant", "system", "developer"),
                "content": {"anyOf": [TEXT, arr(_INPUT_CONTENT, minItems=1, maxItems=4)]},
            },
            ("role", "content"),
        ),
        obj(
            {"type": const("function_call"), "call_id": string(minLength=1), "name": string(minLength=1), "arguments": string()},
            ("type", "call_id", "name", "arguments"),
        ),
        obj(
            {"type": const("function_call_output"), "call_id": string(minLength=1), "output": TEXT},
            ("type", "call_id", "output"),
        ),
    ]
}
_USAGE_RESPONSES = obj(
    {
        "input_tokens": COUNT,
        "output_tokens": COUNT,
        "total_tokens": COUNT,
        "input_tokens_details": obj({"cached_tokens": COUNT}),
        "output_tokens_details": obj({"reasoning_tokens": COUNT}),
    },
    ("input_tokens", "output_tokens", "total_tokens"),
)

RESPONSES: dict[str, Schema] = {
    "ResponsesRequest": obj(
        {
            "model": MODEL,
            "input": {"anyOf": [TEXT, arr(_INPUT_ITEM, minItems=1, maxItems=8)]},
            "instructions": nullable(TEXT),
            "stream": BOOL,
            "tools": arr(
                obj(
                    {
                        "type": const("function"),
                        "name": string(pattern="^[a-zA-Z0-9_-]{1,64}$"),
                        "description": TEXT,
                        "parameters": ANY_OBJECT,
                        "strict": BOOL,
                    },
                    ("type", "name"),
                ),
                maxItems=8,
            ),
            "tool_choice": {
                "anyOf": [
                    enum("none", "auto", "required"),
                    obj({"type": const("function"), "name": string(minLength=1)}, ("type", "name")),
                ]
            },
            "text": obj(
                {
                    "format": {
                        "oneOf": [
                            obj({"type": enum("text", "json_object")}, ("type",)),
                            obj(
                                {
                                    "type": const("json_schema"),
                                    "name": string(pattern="^[a-zA-Z0-9_-]{1,64}$"),
                                    "schema": ANY_OBJECT,
                                    "strict": BOOL,
                                },
                                ("type", "name", "schema"),
                            ),
                        ]
                    }
                }
            ),
            "reasoning": obj({"effort": enum("minimal", "low", "medium", "high"), "summary": enum("auto", "concise", "detailed")}),
            "max_output_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1},
            "previous_response_id": nullable(string()),
            "store": BOOL,
            "parallel_tool_calls": BOOL,
            "metadata": {"type": "object", "additionalProperties": string(maxLength=512), "maxProperties": 16},
            "user": string(),
        },
        ("model", "input"),
        description="OpenAI Responses request. `previous_response_id` and `store` work on every backend.",
    ),
    "Response": obj(
        {
            "id": string(),
            "object": const("response"),
            "created_at": INT,
            "status": enum("completed", "failed", "in_progress", "incomplete", "cancelled", "queued"),
            "model": string(),
            "output": arr(obj({"type": string()}, ("type",))),
            "output_text": string(),
            "error": nullable(ANY_OBJECT),
            "incomplete_details": nullable(ANY_OBJECT),
            "usage": nullable(_USAGE_RESPONSES),
        },
        ("id", "object", "created_at", "status", "model", "output"),
    ),
    "ResponseStreamEvent": obj(
        {"type": string(description="e.g. response.created, response.output_text.delta, response.completed"), "sequence_number": COUNT},
        ("type",),
        description="One event of a Responses stream (`event:` line, then `data:` with this object).",
    ),
}

# ----------------------------------------------------------------------------------------- messages

_BLOCK_IN = {
    "oneOf": [
        obj({"type": const("text"), "text": string(minLength=1, maxLength=2000)}, ("type", "text")),
        obj(
            {
                "type": const("image"),
                "source": {
                    "oneOf": [
                        obj(
                            {"type": const("base64"), "media_type": enum("image/png", "image/jpeg", "image/gif", "image/webp"), "data": string()},
                            ("type", "media_type", "data"),
                        ),
                        obj({"type": const("url"), "url": string(minLength=1)}, ("type", "url")),
                    ]
                },
            },
            ("type", "source"),
        ),
        obj(
            {"type": const("tool_use"), "id": string(minLength=1), "name": string(minLength=1), "input": ANY_OBJECT},
            ("type", "id", "name", "input"),
        ),
        obj(
            {"type": const("tool_result"), "tool_use_id": string(minLength=1), "content": TEXT, "is_error": BOOL},
            ("type", "tool_use_id"),
        ),
    ]
}
_MESSAGES_BODY: dict[str, Schema] = {
    "model": MODEL,
    "messages": arr(
        obj(
            {"role": enum("user", "assistant"), "content": {"anyOf": [string(minLength=1, maxLength=2000), arr(_BLOCK_IN, minItems=1, maxItems=4)]}},
            ("role", "content"),
        ),
        minItems=1,
        maxItems=8,
    ),
    "system": {"anyOf": [TEXT, arr(obj({"type": const("text"), "text": TEXT}, ("type", "text")), maxItems=4)]},
    "tools": arr(
        obj(
            {"name": string(pattern="^[a-zA-Z0-9_-]{1,64}$"), "description": TEXT, "input_schema": ANY_OBJECT},
            ("name", "input_schema"),
        ),
        maxItems=8,
    ),
    "tool_choice": obj({"type": enum("auto", "any", "tool", "none"), "name": string()}, ("type",)),
    "thinking": {
        "oneOf": [
            obj({"type": const("enabled"), "budget_tokens": {"type": "integer", "minimum": 1024}}, ("type", "budget_tokens")),
            obj({"type": const("disabled")}, ("type",)),
        ]
    },
}
_USAGE_MESSAGES = obj(
    {
        "input_tokens": COUNT,
        "output_tokens": COUNT,
        "cache_creation_input_tokens": nullable(COUNT),
        "cache_read_input_tokens": nullable(COUNT),
    },
    ("input_tokens", "output_tokens"),
)

MESSAGES: dict[str, Schema] = {
    "MessagesRequest": obj(
        {
            **_MESSAGES_BODY,
            "max_tokens": {"type": "integer", "minimum": 1},
            "stream": BOOL,
            "temperature": {"type": "number", "minimum": 0, "maximum": 1},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1},
            "top_k": {"type": "integer", "minimum": 1},
            "stop_sequences": arr(string(minLength=1), maxItems=4),
            "metadata": obj({"user_id": string()}),
        },
        ("model", "max_tokens", "messages"),
        description="Claude Messages request (Claude Code and the Anthropic SDKs send this).",
    ),
    "Message": obj(
        {
            "id": string(),
            "type": const("message"),
            "role": const("assistant"),
            "model": string(),
            "content": arr(obj({"type": enum("text", "tool_use", "thinking", "redacted_thinking")}, ("type",))),
            "stop_reason": nullable(enum("end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal")),
            "stop_sequence": nullable(string()),
            "usage": _USAGE_MESSAGES,
        },
        ("id", "type", "role", "model", "content", "stop_reason", "usage"),
    ),
    "MessageStreamEvent": obj(
        {"type": enum("message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop", "ping", "error")},
        ("type",),
        description="One event of a Claude Messages stream (`event:` line, then `data:` with this object).",
    ),
    "CountTokensRequest": obj(_MESSAGES_BODY, ("model", "messages")),
    "CountTokensResponse": obj({"input_tokens": COUNT}, ("input_tokens",)),
}

# ----------------------------------------------------------------------------------------- embeddings

EMBEDDINGS: dict[str, Schema] = {
    "EmbeddingRequest": obj(
        {
            "model": MODEL,
            "input": {"anyOf": [string(minLength=1), arr(string(minLength=1), minItems=1, maxItems=8)]},
            "encoding_format": enum("float", "base64"),
            "dimensions": {"type": "integer", "minimum": 1},
            "user": string(),
        },
        ("model", "input"),
    ),
    "EmbeddingList": obj(
        {
            "object": const("list"),
            "data": arr(
                obj(
                    {"object": const("embedding"), "index": COUNT, "embedding": {"anyOf": [arr(NUMBER), string()]}},
                    ("object", "index", "embedding"),
                )
            ),
            "model": string(),
            "usage": obj({"prompt_tokens": COUNT, "total_tokens": COUNT}),
        },
        ("object", "data", "model"),
    ),
}

COMPONENTS: dict[str, Schema] = {**ERRORS, **CHAT, **RESPONSES, **MESSAGES, **EMBEDDINGS}
