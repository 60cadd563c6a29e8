"""Tensors on the wire: numpy arrays <-> ``TensorProto`` and TF Serving's JSON forms.

Responses carry values in the typed repeated fields (``float_val``,
``string_val``, ...) rather than ``tensor_content``, as TF Serving does: TF
Serving's example clients read ``outputs['scores'].float_val`` directly.
"""

from __future__ import annotations

import base64
import math
from typing import Any, NamedTuple

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
_DTYPE_OF_NUMPY = {
    np.dtype(np_type): dt for dt, (_, np_type) in _FIELDS.items() if np_type is not object and dt != types_pb2.DT_UINT16
}
_DTYPE_OF_NUMPY[np.dtype(np.uint16)] = types_pb2.DT_UINT16


def dtype_name(dtype: int) -> str:
    """``DT_FLOAT`` -> ``"float"``, the way TensorFlow names types in its messages."""
    return types_pb2.DataType.Name(dtype).removeprefix("DT_").lower()


# -- request tensors: checked before they are decoded ----------------------------

# The most a request's input tensors may take once decoded, all together (the
# server's --max-request-tensor-bytes). A TensorProto with fewer values than its
# shape holds repeats the last one (TensorFlow's Tensor::FromProto), so a tiny
# message can describe a huge tensor: every size is checked against this before
# anything is allocated.
DEFAULT_MAX_REQUEST_TENSOR_BYTES = 64 << 20
# What a string element costs besides its bytes: the Python object holding it and
# its slot in the array here, TensorFlow's tstring once it is fed.
STRING_ELEMENT_BYTES = 48
_ITEMSIZE = {
    dt: (STRING_ELEMENT_BYTES if np_type is object else np.dtype(np_type).itemsize)
    for dt, (_, np_type) in _FIELDS.items()
}
MAX_DIMS = 64  # numpy's limit (TensorFlow's TensorShape allows 254, which numpy cannot represent)
# Decoded arrays from this size up are 64-byte aligned: TensorFlow then feeds them as they
# are, where it would otherwise copy them into its allocator (whose oneDNN pool keeps the
# memory for good).
_ALIGN = 64
_ALIGN_FROM = 64 << 10

# Types without a simple field of their own: (field, proto values per element, bytes per element).
_OTHER_FIELDS: dict[int, tuple[str, int, int]] = {
    types_pb2.DT_HALF: ("half_val", 1, 2),
    types_pb2.DT_BFLOAT16: ("half_val", 1, 2),
    types_pb2.DT_COMPLEX64: ("scomplex_val", 2, 8),
    types_pb2.DT_COMPLEX128: ("dcomplex_val", 2, 16),
    types_pb2.DT_QINT8: ("int_val", 1, 1),
    types_pb2.DT_QUINT8: ("int_val", 1, 1),
    types_pb2.DT_QINT16: ("int_val", 1, 2),
    types_pb2.DT_QUINT16: ("int_val", 1, 2),
    types_pb2.DT_QINT32: ("int_val", 1, 4),
    types_pb2.DT_INT4: ("int_val", 1, 1),
    types_pb2.DT_UINT4: ("int_val", 1, 1),
    types_pb2.DT_FLOAT8_E5M2: ("float8_val", 1, 1),
    types_pb2.DT_FLOAT8_E4M3FN: ("float8_val", 1, 1),
    types_pb2.DT_FLOAT8_E4M3FNUZ: ("float8_val", 1, 1),
    types_pb2.DT_FLOAT8_E4M3B11FNUZ: ("float8_val", 1, 1),
    types_pb2.DT_FLOAT8_E5M2FNUZ: ("float8_val", 1, 1),
}


class TensorTooLarge(ValueError):
    """The request's input tensors, decoded, would take more than the server allows."""

    def __init__(self, needed: int, limit: int | float, what: str, at_least: bool = False):
        super().__init__(
            f"{what} would take {'at least ' if at_least else ''}{needed} bytes once decoded, over the "
            f"server's limit of {limit} bytes for a request's input tensors (--max-request-tensor-bytes): "
            "send fewer or smaller values per request, e.g. split the batch"
        )
        self.needed, self.limit = needed, limit


class Budget:
    """The bytes a request's input tensors may take once decoded, spent tensor by tensor."""

    def __init__(self, limit: int | float | None = None):
        self.limit = DEFAULT_MAX_REQUEST_TENSOR_BYTES if limit is None else limit
        self.used = 0
        self._before = 0  # spent by the tensors before the current one

    def begin(self) -> None:
        """A new tensor starts (so that a refusal can tell its own size from the request's)."""
        self._before = self.used

    def take(self, nbytes: int, what: object, *, counting: bool = False) -> None:
        """Count ``nbytes`` more; TensorTooLarge (counting nothing) if that passes the limit.

        ``what``'s str names the tensor; ``counting``: its values are being counted one by
        one, so the refusal can only say "at least".
        """
        if self.used + nbytes > self.limit:
            what = str(what)
            if self._before:
                what = f"{what}, with the {self._before} bytes of the inputs before it,"
            raise TensorTooLarge(self.used + nbytes, self.limit, what, at_least=counting)
        self.used += nbytes


def aligned_empty(shape: tuple[int, ...] | list[int], dtype: Any) -> np.ndarray:
    """``np.empty``, 64-byte aligned when large (so that TensorFlow feeds it without a copy)."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < _ALIGN_FROM or dtype.kind == "O":
        return np.empty(shape, dtype)
    raw = np.empty(nbytes + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def request_shape(proto: tensor_pb2.TensorProto) -> tuple[list[int], int]:
    """The dimensions and element count of a request tensor; ValueError unless every dimension is known and >= 0."""
    shape = proto.tensor_shape
    if shape.unknown_rank:
        raise ValueError(
            "its shape has unknown rank (unknown_rank is set): a request tensor needs a fully defined shape"
        )
    dims = [d.size for d in shape.dim]
    if len(dims) > MAX_DIMS:
        raise ValueError(f"its shape has {len(dims)} dimensions, more than the {MAX_DIMS} a tensor may have")
    for i, size in enumerate(dims):
        if size < 0:
            raise ValueError(
                f"dimension {i} of its shape {dims} is {size}: every dimension of a request tensor "
                "must be known and 0 or more"
            )
    return dims, math.prod(dims)


class TensorCheck(NamedTuple):
    """What ``check_tensor`` found: decoding reuses it (reading ``tensor_content`` copies it, each time)."""

    dims: list[int]
    elements: int
    nbytes: int  # once decoded, as counted against the budget
    content: bytes  # tensor_content, b"" when the values are in a typed field


def check_tensor(proto: tensor_pb2.TensorProto, budget: Budget | None = None) -> TensorCheck:
    """Check a request tensor as TensorFlow's ``Tensor::FromProto`` does, before decoding it.

    The shape must be fully defined with every dimension >= 0; ``tensor_content``
    must hold exactly elements x the type's size; the typed field may hold fewer
    values than the shape (the last one is repeated, none: zeros) but not more.
    The bytes the decoded tensor takes (a string element counts its length plus
    ``STRING_ELEMENT_BYTES``) are taken from ``budget`` if one is given:
    TensorTooLarge when they do not fit, found before anything is allocated.
    ValueError (with what is wrong) for a malformed tensor.
    """
    return _inspect(proto, budget if budget is not None else Budget(math.inf))


def _type_name(dtype: int) -> str:
    try:
        return dtype_name(dtype)
    except ValueError:  # not a DataType at all
        return str(dtype)


def _inspect(proto: tensor_pb2.TensorProto, budget: Budget | None) -> TensorCheck:
    """``check_tensor``'s work: (dims, elements, decoded bytes); with no budget, string bytes are not counted."""
    dims, n = request_shape(proto)
    dtype = proto.dtype
    entry = _FIELDS.get(dtype)
    if entry is not None:
        field, np_type = entry
        per_value, itemsize = 1, _ITEMSIZE[dtype]
    else:
        other = _OTHER_FIELDS.get(dtype)
        if other is None:
            raise ValueError(f"type {_type_name(dtype)} cannot be sent in a request tensor")
        field, per_value, itemsize = other
        np_type = None
    what = _What(dims, dtype)
    if budget is not None:
        budget.begin()
        budget.take(n * itemsize, what)  # the elements alone, before any value is looked at
    content = proto.tensor_content
    if content:
        if np_type is object:
            raise ValueError("a string tensor carries its values in string_val, not in tensor_content")
        if len(content) != n * itemsize:
            raise ValueError(
                f"tensor_content holds {len(content)} bytes where shape {dims} of {_type_name(dtype)} "
                f"needs {n} x {itemsize} = {n * itemsize}"
            )
        return TensorCheck(dims, n, n * itemsize, content)
    values = getattr(proto, field)
    count = len(values)
    if per_value > 1:
        if count % per_value:
            raise ValueError(f"{field} holds {count} numbers: a {_type_name(dtype)} element takes {per_value}")
        count //= per_value
    if count > n:
        raise ValueError(f"{field} holds {count} values, more than the {n} elements of shape {dims}")
    if np_type is not object or budget is None:
        return TensorCheck(dims, n, n * itemsize, b"")
    # Strings: their bytes too; the ones not sent repeat the last (TensorFlow copies it into each).
    text = sum(map(len, values)) + (n - count) * (len(values[-1]) if count else 0)
    budget.take(text, what)
    return TensorCheck(dims, n, n * itemsize + text, b"")


class _What:
    """How a refusal names the tensor, made only when one is."""

    __slots__ = ("dims", "dtype")

    def __init__(self, dims: list[int], dtype: int):
        self.dims, self.dtype = dims, dtype

    def __str__(self) -> str:
        return f"a tensor of shape {self.dims} of {_type_name(self.dtype)}"


def to_ndarray(
    proto: tensor_pb2.TensorProto, budget: Budget | None = None, *, checked: TensorCheck | None = None
) -> np.ndarray:
    """Decode a request tensor (typed fields or ``tensor_content``), checking it first (``check_tensor``).

    ValueError if malformed, TensorTooLarge if over ``budget``; ``checked``:
    what ``check_tensor`` returned, when the caller has just checked it. The simple types are read
    with numpy straight from the message (``tf.make_ndarray`` costs about as much
    as running a small model), into an aligned array when large; half, complex and
    the other rare types go through ``tf.make_ndarray``.
    """
    dims, n, _, content = checked or _inspect(proto, budget)
    entry = _FIELDS.get(proto.dtype)
    if entry is None:
        return _make_ndarray(proto)
    field, np_type = entry
    if np_type is object:
        values = proto.string_val
        count = len(values)
        if count == n:
            return np.array(list(values) or [], dtype=object).reshape(dims)
        out = np.empty(n, dtype=object)
        if count:
            out[:count] = list(values)
            out[count:] = values[-1]
        else:
            out[:] = b""
        return out.reshape(dims)
    if content and n * _ITEMSIZE[proto.dtype] < _ALIGN_FROM:
        return np.frombuffer(content, dtype=np_type).reshape(dims).copy()
    out = aligned_empty(dims, np_type)
    flat = out.reshape(-1)
    if content:
        flat[:] = np.frombuffer(content, dtype=np_type)
        return out
    values = getattr(proto, field)
    count = len(values)
    try:
        if count == n:
            flat[:] = values
        elif count:
            flat[:count] = values
            flat[count:] = values[-1]
        else:
            flat[:] = 0
    except (OverflowError, TypeError) as e:
        raise ValueError(f"cannot decode tensor of type {dtype_name(proto.dtype)}: {e}") from None
    return out


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


def json_to_ndarray(value: Any, dtype: int, budget: Budget | None = None, what: str = "the tensor") -> np.ndarray:
    """One JSON value (scalar or nested lists) as an array of ``dtype``; ``{"b64": ...}`` for bytes.

    The values are counted (and, for strings, their bytes) against ``budget``
    before the array is made: TensorTooLarge names ``what``.
    """
    budget = budget if budget is not None else Budget(math.inf)
    budget.begin()
    if dtype == types_pb2.DT_STRING:
        return np.array(_json_strings(value, budget, what), dtype=object)
    _, np_type = _FIELDS.get(dtype, (None, None))
    if np_type is None:
        raise ValueError(f"Conversion of JSON Value: {value!r} to type: {dtype_name(dtype)} is not supported")
    # JSON's own types must fit the tensor's, as in TF Serving: numbers for floats,
    # integers (in the type's range) for integer types, true/false for bool only.
    np_dtype = np.dtype(np_type)
    if np_dtype.kind == "f":

        def fits(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool)
    elif np_dtype.kind == "b":

        def fits(v: Any) -> bool:
            return isinstance(v, bool)
    else:
        low, high = int(np.iinfo(np_dtype).min), int(np.iinfo(np_dtype).max)

        def fits(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high

    count = [0]
    bad = _first_leaf(value, lambda v: not fits(v), count)
    if bad is not _NONE:
        raise ValueError(f"JSON Value: {_short(bad)} is not of expected type: {dtype_name(dtype)}")
    budget.take(count[0] * np_dtype.itemsize, what)
    try:
        # JSON integers may be bigger than int64: a float tensor reads every number as a float
        array = np.array(value, dtype=np_dtype) if np_dtype.kind == "f" else np.array(value)
    except OverflowError:
        raise ValueError(
            f"JSON Value: {_short(value)} holds a number out of the range of {dtype_name(dtype)}"
        ) from None
    except ValueError:  # ragged nesting
        array = np.empty(0, dtype=object)
    if array.dtype == object:
        raise ValueError(
            f"JSON Value: {_short(value)} is not a dense list: every list of a level must have the same length"
        )
    if array.nbytes < _ALIGN_FROM:
        return array.astype(np_type, copy=False)
    out = aligned_empty(array.shape, np_type)
    out[...] = array
    return out


def _json_strings(value: Any, budget: Budget, what: str) -> Any:
    if isinstance(value, list):
        return [_json_strings(v, budget, what) for v in value]
    if is_b64(value):
        try:
            raw = base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise ValueError("Unable to base64 decode") from None
    elif isinstance(value, str):
        raw = value.encode()
    else:
        raise ValueError(f"JSON Value: {_short(value)} is not of expected type: string")
    budget.take(len(raw) + STRING_ELEMENT_BYTES, what, counting=True)
    return raw


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


def _first_leaf(value: Any, test, count: list[int]) -> Any:
    """The first non-list value (depth first) for which ``test`` holds, else ``_NONE``; counts the values seen."""
    if isinstance(value, list):
        for item in value:
            found = _first_leaf(item, test, count)
            if found is not _NONE:
                return found
        return _NONE
    count[0] += 1
    return value if test(value) else _NONE


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
