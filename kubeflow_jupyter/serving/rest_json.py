"""TF Serving's REST JSON, read: the body parsed within bounds, inputs as arrays, examples as tf.Examples.

The row format (``instances``) and the columnar one (``inputs``) become one
array per signature input, with TF Serving's typing rules and messages; the
arrays count against the request's tensor budget before they are made. A
document nested deeper than ``MAX_JSON_DEPTH`` is refused before it is parsed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
from tensorflow.core.example import example_pb2

from . import tensors
from .server_errors import invalid

INT64_MAX = (1 << 63) - 1
MAX_JSON_DEPTH = 64  # arrays and objects, the document's own object included


def parse_json(body: bytes) -> dict:
    """The body as a JSON object; INVALID_ARGUMENT when it is empty, nested too deeply, malformed or no object."""
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise invalid(
            f"JSON Parse error: the document nests arrays and objects {depth} levels deep; at most "
            f"{MAX_JSON_DEPTH} are allowed"
        )
    try:
        doc = json.loads(body)
    except RecursionError:
        raise invalid(
            f"JSON Parse error: the document is nested too deeply (at most {MAX_JSON_DEPTH} levels)"
        ) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise invalid(f"JSON Parse error: {e}") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {short(doc)} Is not object")
    return doc


# A JSON string, escapes included; an unterminated one runs to the end. It always matches at a quote,
# so the scan is linear (a pattern that could fail there would be retried from every later quote).
_JSON_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.S)
_OPEN_CLOSE = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[{]}")


def json_depth(body: bytes) -> int:
    """How deeply a JSON text nests arrays and objects, found without parsing it (brackets in strings skipped).

    Python's parser and every walk over the parsed document recurse, so a
    5,000-deep document would end in RecursionError; this looks at the bytes at C
    speed first (linear: ~0.15 s for 50 MB). A text with no more opening brackets
    than ``MAX_JSON_DEPTH`` is not scanned: their count is returned, an upper bound.
    """
    openers = body.count(b"[") + body.count(b"{")
    if openers <= MAX_JSON_DEPTH:
        return openers
    if b'"' in body:
        body = _JSON_STRING.sub(b"", body)
    steps = np.frombuffer(body.translate(_OPEN_CLOSE, _NOT_BRACKETS), dtype=np.int8)
    depth = deepest = 0
    chunk = 1 << 20
    for start in range(0, len(steps), chunk):
        levels = np.cumsum(steps[start : start + chunk], dtype=np.int64)
        deepest = max(deepest, depth + int(levels.max()))
        depth += int(levels[-1])
    return deepest


def signature_name(doc: dict) -> str:
    """The body's ``signature_name`` ("" when absent: the default signature)."""
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid(f"JSON Value: {short(doc)} not formatted correctly. 'signature_name' key must be a string value.")
    return name


def instances(items: Any, info: dict, budget: tensors.Budget) -> dict[str, np.ndarray]:
    """Row format: each element one example (a value, or an object with one key per input)."""
    if not isinstance(items, list):
        raise invalid("Expecting 'instances' to be an list/array")
    if not items:
        raise invalid("No values in 'instances' array")
    as_objects = isinstance(items[0], dict) and not tensors.is_b64(items[0])
    if not as_objects and len(info) > 1:
        raise invalid(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map"
        )
    columns: dict[str, list] = {name: [] for name in info}
    for index, item in enumerate(items):
        is_object = isinstance(item, dict) and not tensors.is_b64(item)
        if as_objects != is_object:
            kind = "object but got list" if as_objects else "value/list but got object"
            raise invalid(f"Expecting {kind} at item {index} of input list")
        if as_objects:
            if set(item) != set(info):
                raise invalid(
                    f"Failed to process element: {index} of 'instances' list. JSON object: {short(item)} "
                    f"keys must be equal to: {','.join(sorted(info))}"
                )
            for name, value in item.items():
                columns[name].append(value)
        else:
            columns[next(iter(info))].append(item)
    return {name: _to_array(name, values, info[name].dtype, budget, batched=True) for name, values in columns.items()}


def columns(value: Any, info: dict, budget: tensors.Budget) -> dict[str, np.ndarray]:
    """Columnar format: ``inputs`` is the one tensor, or an object of named tensors."""
    if not isinstance(value, dict) or tensors.is_b64(value):
        if len(info) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map"
            )
        name = next(iter(info))
        return {name: _to_array(name, value, info[name].dtype, budget, batched=False)}
    arrays = {}
    for name, tensor_info in info.items():
        if name not in value:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = _to_array(name, value[name], tensor_info.dtype, budget, batched=False)
    return arrays


def _to_array(name: str, value: Any, dtype: int, budget: tensors.Budget, *, batched: bool) -> np.ndarray:
    try:
        array = tensors.json_to_ndarray(value, dtype, budget, f"input '{name}'")
    except tensors.TensorTooLarge as e:
        raise invalid(str(e)) from None
    except ValueError as e:
        raise invalid(f"Failed to process input '{name}'. Error: {e}") from None
    if batched and array.dtype == object and array.ndim == 0:
        raise invalid(f"Failed to process input '{name}': the instances differ in shape")
    return array


def example_from_json(value: Any, example: example_pb2.Example) -> None:
    """A JSON object of features -> tf.Example, with TF Serving's typing rules."""
    if not isinstance(value, dict):
        raise invalid(f"Example must be JSON object but got JSON {type(value).__name__}")
    for name, content in value.items():
        feature = example.features.feature[name]
        for item in content if isinstance(content, list) else [content]:
            if isinstance(item, bool):
                feature.int64_list.value.append(int(item))
            elif isinstance(item, int):
                if not -INT64_MAX - 1 <= item <= INT64_MAX:
                    raise invalid(f"Feature: {name} has an integer out of the range of int64: {short(item)}")
                feature.int64_list.value.append(item)
            elif isinstance(item, float):
                feature.float_list.value.append(item)
            elif isinstance(item, str):
                feature.bytes_list.value.append(item.encode())
            elif tensors.is_b64(item):
                feature.bytes_list.value.append(tensors.json_to_ndarray(item, 7).item())
            else:
                raise invalid(f"Feature: {name} has element with unexpected JSON type: {type(item).__name__}")
            if len([k for k in ("int64_list", "float_list", "bytes_list") if feature.HasField(k)]) > 1:
                raise invalid(f"Unexpected element type in feature: {name}")


def short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
