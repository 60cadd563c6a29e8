"""Tensors on the wire: numpy arrays <-> ``TensorProto`` and TF Serving's JSON forms.

Responses carry values in the typed repeated fields (``float_val``,
``string_val``, ...) rather than ``tensor_content``, as TF Serving does: TF
Serving's example clients read ``outputs['scores'].float_val`` directly.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

# Which repeated field of TensorProto carries each dtype, and the numpy dtype it decodes to.
_FIELDS: dict[int, tuple[str, Any]] = {
    types_pb2.DT_FLOAT: ("float_val", np.float32),
    types_pb2.DT_DOUBLE: ("double_val", np.float64),
    types_pb2.DT_INT32: ("int_val", np.int32),
    types_pb2.DT_INT16: ("int_val", np.int16),
    types_pb2.DT_INT8: ("int_val", np.int8),
    types_pb2.DT_UINT8: ("int_val", np.uint8),
    types_pb2.DT_UINT16: ("int_val", np.uint16),
    types_pb2.DT_INT64: ("int64_val", np.int64),
    types_pb2.DT_UINT32: ("uint32_val", np.uint32),
    types_pb2.DT_UINT64: ("uint64_val", np.uint64),
    types_pb2.DT_BOOL: ("bool_val", np.bool_),
    types_pb2.DT_STRING: ("string_val", object),
}
_DTYPE_OF_NUMPY = {np.dtype(np_type): dt for dt, (_, np_type) in _FIELDS.items() if np_type is not object and dt != types_pb2.DT_UINT16}
_DTYPE_OF_NUMPY[np.dtype(np.uint16)] = types_pb2.DT_UINT16


def dtype_name(dtype: int) -> str:
    """``DT_FLOAT`` -> ``"float"``, the way TensorFlow names types in its messages."""
    return types_pb2.DataType.Name(dtype).removeprefix("DT_").lower()


def to_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Decode a request tensor (typed fields or ``tensor_content``); ValueError if malformed.

    The common cases (packed ``tensor_content``, or as many typed values as the
    shape holds) are read with numpy straight from the message: ``tf.make_ndarray``
    costs about as much as running a small model. Everything else (value
    broadcasting, half/complex/resource types) goes through ``tf.make_ndarray``.
    """
    shape = [d.size for d in proto.tensor_shape.dim]
    size = math.prod(shape)
    field, np_type = _FIELDS.get(proto.dtype, (None, None))
    if field is not None and all(s >= 0 for s in shape):
        if proto.tensor_content and np_type is not object:
            content = proto.tensor_content
            if len(content) == size * np.dtype(np_type).itemsize:
                return np.frombuffer(content, dtype=np_type).reshape(shape).copy()
        elif not proto.tensor_content:
            values = getattr(proto, field)
            if len(values) == size:
                if np_type is object:
                    return np.array(list(values) or [], dtype=object).reshape(shape)
                return np.array(values, dtype=np_type).reshape(shape)
    return _make_ndarray(proto)


def _make_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
    import tensorflow as tf

    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError) as e:
        raise ValueError(f"cannot decode tensor of type {dtype_name(proto.dtype)}: {e}") from None


def to_tensor_proto(array: Any, dtype: int | None = None) -> tensor_pb2.TensorProto:
    """Encode an array into the typed repeated field of its dtype (TF Serving's AsProtoField)."""
    proto = tensor_pb2.TensorProto()
    fill_tensor_proto(proto, array, dtype)
    return proto


def fill_tensor_proto(proto: tensor_pb2.TensorProto, array: Any, dtype: int | None = None) -> None:
    """``to_tensor_proto`` into an empty message in place (a response's ``outputs[alias]``: no copy)."""
    array = np.asarray(array)
    if dtype is None:
        dtype = _dtype_of(array)
    field, np_type = _FIELDS.get(dtype, (None, None))
    proto.dtype = dtype
    dims = proto.tensor_shape.dim
    for size in array.shape:
        dims.add(size=size)
    if field is None:  # a dtype without a simple field (half, complex): packed bytes are still valid
        proto.tensor_content = np.ascontiguousarray(array).tobytes()
        return
    flat = array.ravel()
    if dtype == types_pb2.DT_STRING:
        values = flat.tolist()
        if not all(type(v) is bytes for v in values):
            values = [v if isinstance(v, bytes) else str(v).encode() for v in values]
        proto.string_val.extend(values)
    else:
        getattr(proto, field).extend(flat.astype(np_type, copy=False).tolist())


def _dtype_of(array: np.ndarray) -> int:
    if array.dtype.kind in "OSU":
        return types_pb2.DT_STRING
    try:
        return _DTYPE_OF_NUMPY[array.dtype]
    except KeyError:
        raise ValueError(f"unsupported array type {array.dtype}") from None


# -- JSON (REST API) ---------------------------------------------------------

def json_to_ndarray(value: Any, dtype: int) -> np.ndarray:
    """One JSON value (scalar or nested lists) as an array of ``dtype``; ``{"b64": ...}`` for bytes."""
    if dtype == types_pb2.DT_STRING:
        return np.array(_json_strings(value), dtype=object)
    _, np_type = _FIELDS.get(dtype, (None, None))
    if np_type is None:
        raise ValueError(f"Conversion of JSON Value: {value!r} to type: {dtype_name(dtype)} is not supported")
    # JSON's own types must fit the tensor's, as in TF Serving: numbers for floats,
    # integers for integer types, true/false for bool only.
    np_kind = np.dtype(np_type).kind
    fits = {"f": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "b": lambda v: isinstance(v, bool)}.get(np_kind, lambda v: isinstance(v, int) and not isinstance(v, bool))
    bad = _first_leaf(value, lambda v: not fits(v))
    if bad is not _NONE:
        raise ValueError(f"JSON Value: {_short(bad)} is not of expected type: {dtype_name(dtype)}")
    try:
        array = np.array(value)
    except ValueError:  # ragged nesting
        array = np.empty(0, dtype=object)
    if array.dtype == object:
        raise ValueError(f"JSON Value: {_short(value)} is not a dense list: every list of a level must have the same length")
    return array.astype(np_type)


def _json_strings(value: Any) -> Any:
    if isinstance(value, list):
        return [_json_strings(v) for v in value]
    if is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise ValueError("Unable to base64 decode") from None
    if isinstance(value, str):
        return value.encode()
    raise ValueError(f"JSON Value: {_short(value)} is not of expected type: string")


def is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def ndarray_to_json(array: np.ndarray, name: str) -> Any:
    """Nested lists; strings as text, or ``{"b64": ...}`` when the output name ends in ``_bytes``."""
    if array.dtype.kind not in "OSU":
        return array.tolist()
    as_b64 = name.endswith("_bytes")

    def convert(v: Any) -> Any:
        if isinstance(v, list):
            return [convert(x) for x in v]
        raw = v if isinstance(v, bytes) else str(v).encode()
        return {"b64": base64.b64encode(raw).decode()} if as_b64 else raw.decode("utf-8", "replace")

    return convert(array.tolist())


_NONE = object()


def _first_leaf(value: Any, test) -> Any:
    """The first non-list value (depth first) for which ``test`` holds, else ``_NONE``."""
    if isinstance(value, list):
        for item in value:
            found = _first_leaf(item, test)
            if found is not _NONE:
                return found
        return _NONE
    return value if test(value) else _NONE


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
