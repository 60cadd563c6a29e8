"""Request tensors decode to what ``tf.make_ndarray`` gives, in every encoding clients use."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, types_pb2

from kubeflow_jupyter.serving.tensors import to_ndarray, to_tensor_proto

ARRAYS = [
    np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
    np.arange(6, dtype=np.float64).reshape(1, 2, 3),
    np.array([-3, 0, 9], dtype=np.int32),
    np.array([[2**40, -1]], dtype=np.int64),
    np.array([0, 255, 7], dtype=np.uint8),
    np.array([True, False]),
    np.float32(2.5),
    np.zeros((0, 3), np.float32),
    np.array([b"\xff\xd8 jpeg", b""], dtype=object),
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{list(np.shape(a))}")
@pytest.mark.parametrize("encoding", ["make_tensor_proto", "typed fields"])
def test_request_tensor_decodes_like_make_ndarray(array, encoding):
    import tensorflow as tf

    proto = tf.make_tensor_proto(array) if encoding == "make_tensor_proto" else to_tensor_proto(array)
    decoded = to_ndarray(proto)
    expected = tf.make_ndarray(proto)
    assert decoded.dtype == expected.dtype and decoded.shape == expected.shape == np.shape(array)
    assert decoded.tolist() == expected.tolist() == np.asarray(array).tolist()


def test_fewer_values_than_the_shape_holds_are_broadcast_as_tensorflow_does():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.5])
    proto.tensor_shape.dim.add(size=3)
    assert to_ndarray(proto).tolist() == [1.5, 1.5, 1.5]


def test_truncated_tensor_content_is_an_error():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=b"\0" * 6)
    proto.tensor_shape.dim.add(size=2)
    with pytest.raises(ValueError, match=r"tensor_content holds 6 bytes where shape \[2\] of float needs 2 x 4 = 8"):
        to_ndarray(proto)
