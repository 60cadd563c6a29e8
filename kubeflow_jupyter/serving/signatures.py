"""TF Serving's signature semantics on numpy arrays: which signature a call names, its checks, the call.

RunPredict, RunClassify and RunRegress as TF Serving's ``predict_util`` /
``classifier`` / ``regressor`` do them: input names and types against the
SignatureDef, the shape rules of classify and regress outputs, and TF Serving's
messages. Transport-free: :mod:`.core` decodes requests into arrays and calls these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from . import tensors
from .loading import Version
from .server_errors import SignatureMissing, invalid

DEFAULT_SIGNATURE = "serving_default"
CLASSIFY_INPUTS = "inputs"
CLASSIFY_CLASSES = "classes"
CLASSIFY_SCORES = "scores"
REGRESS_OUTPUTS = "outputs"


def signature_for_predict(version: Version, name: str) -> meta_graph_pb2.SignatureDef:
    """The SignatureDef Predict names (default: serving_default), or FAILED_PRECONDITION."""
    try:
        return version.signature_defs[name or DEFAULT_SIGNATURE]
    except KeyError:
        raise SignatureMissing(name or DEFAULT_SIGNATURE) from None


@dataclass(frozen=True)
class SignatureFacts:
    """What every Predict checks, taken out of the SignatureDef once (reading protobuf maps is slow)."""

    inputs: frozenset[str]
    dtypes: dict[str, int]
    outputs: frozenset[str]
    has_defaults: bool

    @classmethod
    def of(cls, version: Version, name: str) -> SignatureFacts:
        facts = version.facts.get(name)
        if facts is None:
            signature = signature_for_predict(version, name)
            facts = cls(
                frozenset(signature.inputs),
                {k: v.dtype for k, v in signature.inputs.items()},
                frozenset(signature.outputs),
                bool(signature.defaults),
            )
            version.facts[name] = facts
        return facts


def predict(
    version: Version, signature_name: str, inputs: dict[str, np.ndarray], output_filter: Any = ()
) -> dict[str, np.ndarray]:
    """TF Serving's RunPredict: validate names, feed the signature, return the asked outputs."""
    signature_name = signature_name or DEFAULT_SIGNATURE
    facts = SignatureFacts.of(version, signature_name)
    expected = facts.inputs
    sent = set(inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not facts.has_defaults):
        raise invalid(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}."
        )
    for name in sorted(sent):
        if name not in expected:
            raise invalid(
                f"input tensor alias not found in signature: {name}. "
                f"Inputs expected to be in the set {{{','.join(sorted(expected))}}}."
            )
        _check_input(name, inputs[name], facts.dtypes[name])
    wanted = list(output_filter)
    for alias in wanted:
        if alias not in facts.outputs:
            raise invalid(
                f"output tensor alias not found in signature: {alias} Outputs expected to be "
                f"in the set {{{','.join(sorted(facts.outputs))}}}."
            )
    if len(set(wanted)) != len(wanted):
        raise invalid(f"duplicate output tensor alias: {next(a for a in wanted if wanted.count(a) > 1)}")
    if signature_name not in version.callable:
        raise invalid(
            f'signature "{signature_name}" cannot be called (it is not a function signature of the SavedModel)'
        )
    outputs = version.run(signature_name, inputs)
    return {alias: outputs[alias] for alias in (wanted or sorted(outputs))}


def _check_input(name: str, array: np.ndarray, want: int) -> None:
    """The type against the signature's, with TensorFlow's message.

    Shapes are left to the model, as TF Serving does: a TF1 graph takes ``[3]``
    where its signature says ``[-1, 1]`` (half_plus_two's famous curl example).
    """
    got = types_pb2.DT_STRING if array.dtype.kind in "OSU" else tensors._DTYPE_OF_NUMPY.get(array.dtype)
    if got != want:
        got_name = tensors.dtype_name(got) if got is not None else str(array.dtype)
        raise invalid(f"Expects arg '{name}' to be {tensors.dtype_name(want)} but {got_name} is provided")


def _example_signature(version: Version, signature_name: str):
    """The named (default: serving_default) one-input signature for Classify/Regress, as TF Serving checks it."""
    signature_name = signature_name or DEFAULT_SIGNATURE
    signature = version.signature_defs.get(signature_name)
    if signature is None:
        raise invalid(f"No signature was found with the name: {signature_name}")
    if len(signature.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    return signature_name, signature


def classify(
    version: Version, signature_name: str, examples: list[bytes]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """TF Serving's RunClassify on serialized tf.Examples: (classes [N,K] or None, scores [N,K] or None)."""
    signature_name, signature = _example_signature(version, signature_name)
    if len(signature.outputs) not in (1, 2):
        raise invalid(f"Expected one or two output Tensors, found {len(signature.outputs)}")
    if CLASSIFY_INPUTS not in signature.inputs:
        raise invalid(f"No classification inputs found in SignatureDef: {signature}")
    if CLASSIFY_CLASSES not in signature.outputs and CLASSIFY_SCORES not in signature.outputs:
        raise invalid(
            'Expected classification signature outputs to contain at least one of "classes" or '
            f'"scores". Signature was: {signature}'
        )
    if not examples:
        raise invalid("Input is empty.")
    outputs = version.run(signature_name, {CLASSIFY_INPUTS: np.array(examples, dtype=object)})
    classes, scores = outputs.get(CLASSIFY_CLASSES), outputs.get(CLASSIFY_SCORES)
    for label, tensor in (("classes", classes), ("scores", scores)):
        if tensor is None:
            continue
        if tensor.ndim != 2:
            raise invalid(f"Expected Tensor shape: [batch_size num_classes] but got {list(tensor.shape)}")
        if tensor.shape[0] != len(examples):
            raise invalid(f"Expected {label} output batch size of {len(examples)}. Got: {tensor.shape[0]}")
    if classes is not None and classes.dtype.kind not in "OSU":
        raise invalid(f"Expected classes Tensor of DT_STRING. Got: {classes.dtype}")
    if scores is not None and scores.dtype != np.float32:
        raise invalid(f"Expected scores Tensor of DT_FLOAT. Got: {scores.dtype}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid(
            f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    return classes, scores


def regress(version: Version, signature_name: str, examples: list[bytes]) -> np.ndarray:
    """TF Serving's RunRegress on serialized tf.Examples: one float per example."""
    signature_name, signature = _example_signature(version, signature_name)
    if len(signature.outputs) != 1:
        raise invalid("Expected one output Tensor.")
    if CLASSIFY_INPUTS not in signature.inputs:
        raise invalid(f"No regression inputs found in SignatureDef: {signature}")
    if REGRESS_OUTPUTS not in signature.outputs:
        raise invalid(f"No regression outputs found in SignatureDef: {signature}")
    if not examples:
        raise invalid("Input is empty.")
    values = version.run(signature_name, {CLASSIFY_INPUTS: np.array(examples, dtype=object)})[REGRESS_OUTPUTS]
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise invalid(
            f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {list(values.shape)}"
        )
    if values.shape[0] != len(examples):
        raise invalid(f"Input batch size did not match output batch size: {len(examples)} vs. {values.shape[0]}")
    if values.dtype != np.float32:
        raise invalid(f"Expected output Tensor of DT_FLOAT.  Got: {values.dtype}")
    return values.reshape(-1)
