"""JSON Schema -> the OpenAPI 3.0 subset Gemini accepts in `parameters` and `responseSchema`.

Gemini's Schema object (https://ai.google.dev/api/caching#Schema) is "a select subset of an
OpenAPI 3.0 schema object": unknown keywords (`$schema`, `additionalProperties`, `$ref`, ...)
are rejected with a 400 "Invalid JSON payload received. Unknown name ...", `enum` holds strings
only, nullability is the `nullable` flag rather than a "null" type, and string `format` may only
be "enum" or "date-time" on the Gemini Developer API
(https://firebase.google.com/docs/reference/js/ai.schemashared#schemasharedformat).
Callers send tool schemas written for OpenAI or Anthropic (pydantic, zod output), so they are
rewritten here instead of being passed through.
"""

from __future__ import annotations

from typing import Any

__all__ = ["clean_schema"]

# Keywords of Gemini's Schema kept as they are (besides the ones rewritten below). `default` and
# `example` are left out: JSON Schema says they are annotations only, and API versions differ in
# accepting them (v1 rejects them), so dropping them never changes what the model may produce.
_KEEP = frozenset({
    "title", "description", "minItems", "maxItems", "minProperties", "maxProperties",
    "minLength", "maxLength", "pattern", "minimum", "maximum", "propertyOrdering",
})
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
_STRING_FORMATS = frozenset({"enum", "date-time"})
_NUMBER_FORMATS = frozenset({"float", "double", "int32", "int64"})
_MAX_DEPTH = 32  # recursive $ref schemas are cut off here


def clean_schema(schema: Any) -> dict[str, Any]:
    """A copy of `schema` that Gemini accepts; pure, never raises, never mutates its input.

    `$defs`/`definitions` references are inlined (recursion cut at a depth limit), `const`
    becomes a one-value enum, type lists and `anyOf` with "null" become `nullable`, `oneOf`
    becomes `anyOf`, `allOf` is merged, and unsupported keywords are dropped.
    """
    if not isinstance(schema, dict):
        return {}
    return _clean(schema, schema, 0)


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    if ref == "#":
        return root
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix):
            section = root.get(prefix[2:-1])
            if isinstance(section, dict):
                return section.get(ref[len(prefix):])
    return None


def _merge_all_of(schema: dict[str, Any], root: dict[str, Any], depth: int) -> dict[str, Any]:
    """Fold `allOf` members into one schema (properties and required lists united)."""
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for member in schema["allOf"]:
        if isinstance(member, dict) and "$ref" in member:
            member = _resolve(str(member["$ref"]), root)
        if not isinstance(member, dict):
            continue
        for key, value in member.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**(merged.get("properties") or {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*(merged.get("required") or []), *value]))
            else:
                merged.setdefault(key, value)
    return merged


def _clean(schema: dict[str, Any], root: dict[str, Any], depth: int) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        return {"type": "object"}
    if "$ref" in schema:
        target = _resolve(str(schema["$ref"]), root)
        base = _clean(target, root, depth + 1) if isinstance(target, dict) else {"type": "object"}
        if isinstance(schema.get("description"), str):  # a description next to $ref wins
            base["description"] = schema["description"]
        return base
    if isinstance(schema.get("allOf"), list):
        schema = _merge_all_of(schema, root, depth)

    out: dict[str, Any] = {}
    nullable = schema.get("nullable") is True

    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"] -> string + nullable; several -> anyOf
        names = [k for k in kind if isinstance(k, str)]
        nullable = nullable or "null" in names
        names = [k for k in names if k in _TYPES]
        if len(names) == 1:
            kind = names[0]
        elif names:
            out["anyOf"] = [{"type": k} for k in names]
            kind = None
        else:
            kind = None
    if kind == "null":
        nullable, kind = True, None
    if isinstance(kind, str) and kind.lower() in _TYPES:
        out["type"] = kind.lower()

    options = schema.get("anyOf") if isinstance(schema.get("anyOf"), list) else schema.get("oneOf")
    if isinstance(options, list):
        variants = []
        for option in options:
            if not isinstance(option, dict):
                continue
            if option.get("type") == "null" or option == {"type": ["null"]}:
                nullable = True  # Optional[X] from pydantic: anyOf [X, {"type": "null"}]
                continue
            variants.append(_clean(option, root, depth + 1))
        if len(variants) == 1 and "type" not in out:
            single = variants[0]
            for key, value in single.items():
                out.setdefault(key, value)
            nullable = nullable or single.get("nullable") is True
        elif variants:
            out["anyOf"] = variants

    for key in _KEEP:
        if key in schema:
            out[key] = schema[key]

    fmt = schema.get("format")
    if isinstance(fmt, str):
        allowed = _STRING_FORMATS if out.get("type") == "string" else _NUMBER_FORMATS
        if fmt in allowed:
            out["format"] = fmt

    values = [schema["const"]] if "const" in schema else schema.get("enum")
    if isinstance(values, list) and values:
        _apply_enum(out, values)

    if out.get("type") == "object" or (isinstance(schema.get("properties"), dict) and "type" not in out):
        props = schema.get("properties")
        if isinstance(props, dict) and props:
            out["type"] = "object"
            out["properties"] = {
                str(name): _clean(sub, root, depth + 1) if isinstance(sub, dict) else {}
                for name, sub in props.items()
            }
            required = schema.get("required")
            if isinstance(required, list):  # Gemini rejects names that are not properties
                names = [r for r in required if isinstance(r, str) and r in out["properties"]]
                if names:
                    out["required"] = names
    if out.get("type") == "array" or ("items" in schema and "type" not in out):
        items = schema.get("items")
        if isinstance(items, list):  # tuple validation: Gemini has one item schema
            items = items[0] if items else None
        if isinstance(items, dict):
            out["type"] = "array"
            out["items"] = _clean(items, root, depth + 1)
    if nullable:
        out["nullable"] = True
    return out


def _apply_enum(out: dict[str, Any], values: list[Any]) -> None:
    """Gemini enums are lists of strings; other values are described instead of enforced."""
    present = [v for v in values if v is not None]
    if len(present) < len(values):
        out["nullable"] = True
    if present and all(isinstance(v, str) for v in present):
        out.setdefault("type", "string")
        if out["type"] == "string":
            out["enum"] = present
            return
    if present:
        allowed = ", ".join(str(v) for v in present)
        note = f"Allowed values: {allowed}."
        out["description"] = f"{out['description']} {note}" if out.get("description") else note
