"""`/docs`: the API reference, rendered on the server from the OpenAPI document.

No JavaScript renderer and no CDN: the page is plain HTML (readable by agents and without
scripts), built by walking the document into operations and schema tables for the template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 3
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class Token:
    """A piece of a type description: text, or a link to a component schema."""

    text: str = ""
    ref: str = ""


@dataclass
class Row:
    name: str
    type: list[Token]
    required: bool
    description: str
    depth: int


@dataclass
class SchemaView:
    type: list[Token]
    description: str = ""
    rows: list[Row] = field(default_factory=list)
    variants: list[SchemaView] = field(default_factory=list)


@dataclass
class Operation:
    method: str
    path: str
    anchor: str
    summary: str
    description: str
    security: list[str]
    parameters: list[dict[str, Any]]
    request: list[tuple[str, SchemaView]]
    responses: list[tuple[str, str, list[tuple[str, SchemaView]]]]


def _ref_name(schema: dict[str, Any]) -> str:
    return str(schema.get("$ref", "")).rsplit("/", 1)[-1]


def _event_payload(schema: dict[str, Any]) -> Any:
    """The component a server-sent event's `data` carries (see openapi.sse_event), if any."""
    data = (schema.get("properties") or {}).get("data") or {}
    for option in [data, *data.get("anyOf", [])]:
        if isinstance(option, dict) and "contentSchema" in option:
            return option["contentSchema"]
    return None


def type_tokens(schema: Any) -> list[Token]:
    if not isinstance(schema, dict) or not schema:
        return [Token("any")]
    payload = _event_payload(schema)
    if payload is not None:
        return [Token("events of "), *type_tokens(payload)]
    if "$ref" in schema:
        return [Token(ref=_ref_name(schema))]
    for key, joiner in (("anyOf", " | "), ("oneOf", " | "), ("allOf", " & ")):
        if key in schema:
            tokens: list[Token] = []
            for i, option in enumerate(schema[key]):
                if i:
                    tokens.append(Token(joiner))
                tokens.extend(type_tokens(option))
            return tokens
    if "const" in schema:
        return [Token(f'"{schema["const"]}"')]
    if "enum" in schema:
        return [Token("one of " + ", ".join(str(v) for v in schema["enum"]))]
    kind = schema.get("type", "any")
    if kind == "array":
        return [Token("array of "), *type_tokens(schema.get("items"))]
    if isinstance(kind, list):
        return [Token(" | ".join(str(k) for k in kind))]
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return [Token("map of "), *type_tokens(schema["additionalProperties"])]
    return [Token(str(kind))]


def _rows(schema: dict[str, Any], prefix: str, depth: int, out: list[Row]) -> None:
    required = set(schema.get("required", []))
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        full = f"{prefix}{name}"
        out.append(Row(full, type_tokens(prop), name in required, str(prop.get("description", "")), depth))
        if depth < MAX_DEPTH and prop.get("type") == "object" and prop.get("properties"):
            _rows(prop, full + ".", depth + 1, out)
        items = prop.get("items")
        if depth < MAX_DEPTH and isinstance(items, dict) and items.get("properties"):
            _rows(items, full + "[].", depth + 1, out)


def schema_view(schema: Any) -> SchemaView:
    if not isinstance(schema, dict):
        return SchemaView(type=[Token("any")])
    view = SchemaView(type=type_tokens(schema), description=str(schema.get("description", "")))
    if "$ref" in schema:
        return view
    variants = schema.get("oneOf") or schema.get("anyOf")
    if isinstance(variants, list) and any(isinstance(v, dict) and v.get("properties") for v in variants):
        view.variants = [schema_view(v) for v in variants]
        return view
    _rows(schema, "", 0, view.rows)
    return view


def _contents(content: dict[str, Any] | None) -> list[tuple[str, SchemaView]]:
    return [(media, schema_view(body.get("schema"))) for media, body in (content or {}).items()]


def operations_by_tag(document: dict[str, Any]) -> list[tuple[str, str, list[Operation]]]:
    descriptions = {t["name"]: t.get("description", "") for t in document.get("tags", [])}
    groups: dict[str, list[Operation]] = {name: [] for name in descriptions}
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if not op:
                continue
            security = op.get("security", document.get("security", []))
            schemes = sorted({name for requirement in security for name in requirement})
            operation = Operation(
                method=method.upper(),
                path=path,
                anchor=op.get("operationId", f"{method}-{path}"),
                summary=op.get("summary", ""),
                description=op.get("description", ""),
                security=schemes,
                parameters=[p for p in op.get("parameters", []) if isinstance(p, dict)],
                request=_contents((op.get("requestBody") or {}).get("content")),
                responses=[
                    (status, r.get("description", ""), _contents(r.get("content")))
                    for status, r in op.get("responses", {}).items()
                ],
            )
            groups.setdefault((op.get("tags") or ["Other"])[0], []).append(operation)
    return [(tag, descriptions.get(tag, ""), ops) for tag, ops in groups.items() if ops]


def components(document: dict[str, Any]) -> list[tuple[str, SchemaView]]:
    schemas = document.get("components", {}).get("schemas", {})
    return [(name, schema_view(schema)) for name, schema in sorted(schemas.items())]
