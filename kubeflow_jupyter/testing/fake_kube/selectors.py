"""Label and field selectors with the API server's syntax (``a=b,c!=d,e in (x,y),!f``)."""

from __future__ import annotations

import re
from collections.abc import Callable

from .statuses import bad_request

Matcher = Callable[[dict], bool]

_SET_RE = re.compile(r"^\s*(\S+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    terms, depth, current = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return [t.strip() for t in terms if t.strip()]


def _label_term(term: str) -> Callable[[dict], bool]:
    m = _SET_RE.match(term)
    if m:
        key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (s.strip() for s in term.split(op, 1))
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        key = term[1:].strip()
        return lambda labels: key not in labels
    if re.fullmatch(r"[A-Za-z0-9./_-]+", term):
        return lambda labels: term in labels
    raise bad_request(f"unable to parse requirement: {term!r}")


def label_matcher(selector: str | None) -> Matcher:
    terms = [_label_term(t) for t in _split_terms(selector or "")]
    return lambda obj: all(t((obj.get("metadata") or {}).get("labels") or {}) for t in terms)


def _field_value(obj: dict, path: str) -> str:
    value: object = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def field_matcher(selector: str | None, supported: tuple[str, ...]) -> Matcher:
    """Only ``=``, ``==`` and ``!=`` exist for fields; unknown fields are a 400 like on the server."""
    checks = []
    for term in _split_terms(selector or ""):
        op = "!=" if "!=" in term else "==" if "==" in term else "="
        field, _, value = (s.strip() for s in term.partition(op))
        if field not in supported:
            raise bad_request(f"field label not supported: {field}")
        checks.append((field, op == "!=", value))
    return lambda obj: all((_field_value(obj, f) != v) if neg else (_field_value(obj, f) == v) for f, neg, v in checks)
