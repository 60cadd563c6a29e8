"""Check a manifest against the TFJob CRD's structural schema, as the API server does.

The schema is training-operator 1.9's ``openAPIV3Schema`` (shipped as
``crd_schema.json``, descriptions stripped). Like the API server, wrong types are
errors and fields the schema does not know are pruned (we warn, so the user
learns that a misspelt field did nothing).
"""

from __future__ import annotations

import difflib
import functools
import json
from importlib import resources

from ..errors import FieldProblem


@functools.lru_cache(maxsize=1)
def crd_schema() -> dict:
    text = resources.files(__package__).joinpath("crd_schema.json").read_text(encoding="utf-8")
    return json.loads(text)["openAPIV3Schema"]


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
}


def _describe(value) -> str:
    kind = {dict: "a mapping", list: "a list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        kind = "number"
    shown = repr(value) if not isinstance(value, (dict, list)) else ""
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{kind} {shown}".strip() if shown else kind


def _type_ok(value, type_: str) -> bool:
    if type_ == "object":
        return isinstance(value, dict)
    if type_ == "array":
        return isinstance(value, list)
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_ == "boolean":
        return isinstance(value, bool)
    return True


def _hint(value, type_: str) -> str:
    if type_ in ("integer", "number") and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return ": remove the quotes"
    if type_ == "string" and isinstance(value, (int, float, bool)):
        return ": quote it"
    return ""


def check(value, schema: dict, path: str, problems: list[FieldProblem], unknown: list[tuple[str, str]]) -> object:
    """Validate ``value`` in place; return it with unknown fields pruned.

    Type errors go to ``problems``; pruned unknown fields go to ``unknown`` as
    ``(path, hint)``, the hint a spelling suggestion where one is close.
    """
    if value is None:
        return value  # absent/null optional field: the API server drops nulls
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, (int, str)) and not isinstance(value, bool)):
            problems.append(FieldProblem(path, f"must be an integer or a string (got {_describe(value)})"))
        return value
    type_ = schema.get("type")
    if type_ and not _type_ok(value, type_):
        problems.append(
            FieldProblem(path, f"must be {_TYPE_NAMES.get(type_, type_)} (got {_describe(value)}){_hint(value, type_)}")
        )
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key in list(value):
            if not isinstance(key, str):
                problems.append(FieldProblem(path, f"keys must be strings (got {_describe(key)})"))
                continue
            sub = f"{path}.{key}" if path else key
            if props is not None and key in props:
                value[key] = check(value[key], props[key], sub, problems, unknown)
            elif isinstance(extra, dict):
                value[key] = check(value[key], extra, sub, problems, unknown)
            elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                close = difflib.get_close_matches(key, list(props), n=1)
                unknown.append((sub, f" (did you mean {close[0]!r}?)" if close else ""))
                del value[key]
        for req in schema.get("required") or []:
            if req not in value:
                problems.append(FieldProblem(f"{path}.{req}" if path else req, "required field is missing"))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            value[i] = check(item, schema["items"], f"{path}[{i}]", problems, unknown)
    return value
