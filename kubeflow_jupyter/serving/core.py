"""The model server's core: one request, whatever the transport, from model spec to answer.

gRPC (:mod:`.grpc_service`) and REST (:mod:`.rest_service`) both come here: the
model spec is resolved to a servable as TF Serving's ServerCore does (no version
-> ``Latest(name)``, a version -> ``Specific(name, N)``, a label -> the version it
names), the signature is looked up and checked (:mod:`.signatures`), request
tensors are checked against the limits before they are decoded, and failures are
TF Serving's codes and messages (:class:`.server_errors.ServingStatus`), which each
transport only words for its wire.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from tensorflow.core.example import example_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
    regression_pb2,
)

from . import signatures, tensors
from .loading import Version
from .memory import MemoryReturner
from .model_store import ModelStore
from .server_errors import invalid, not_found

# Sent with NOT_FOUND so that a client can say what *is* served (the message stays TF Serving's).
SERVED_MODELS_KEY = "x-served-models"
SIGNATURE_DEF = "signature_def"

# Predict's inputs from the request, once the signature is known: its inputs' TensorInfo by alias -> arrays.
InputDecoder = Callable[[Mapping[str, meta_graph_pb2.TensorInfo]], dict[str, np.ndarray]]


def served_models(store: ModelStore) -> str:
    """The NOT_FOUND hint: ``{"name": [available versions]}`` as JSON."""
    return json.dumps({store.name: store.available()})


def _model_spec(response_spec, version: Version, name: str, signature: str = "") -> None:
    response_spec.name = name
    response_spec.version.value = version.number
    if signature:
        response_spec.signature_name = signature


class ModelServerCore:
    """Predict / Classify / Regress / GetModelMetadata / GetModelStatus for one ModelStore.

    Every request tensor is checked (shape, values against the shape, size) before
    it is decoded, and a request's inputs together may take at most
    ``max_request_tensor_bytes`` once decoded: a 100-byte message can describe a
    billion-element tensor (TensorFlow repeats the last value to fill the shape).
    """

    def __init__(
        self,
        store: ModelStore,
        max_request_tensor_bytes: int = tensors.DEFAULT_MAX_REQUEST_TENSOR_BYTES,
        memory: MemoryReturner | None = None,
    ):
        self.store = store
        self.max_request_tensor_bytes = max_request_tensor_bytes
        self.memory = memory or MemoryReturner()

    def budget(self) -> tensors.Budget:
        return tensors.Budget(self.max_request_tensor_bytes)

    def resolve(self, model_spec) -> Version:
        """The servable a ModelSpec asks for, or TF Serving's NOT_FOUND / INVALID_ARGUMENT."""
        name = model_spec.name
        if not name:
            raise invalid("ModelSpec has no name specified.")
        choice = model_spec.WhichOneof("version_choice")
        number: int | None = None
        if choice == "version_label":
            label = model_spec.version_label
            if name != self.store.name or label not in self.store.labels:
                raise invalid(f"Unrecognized servable version label: {label}")
            number = self.store.labels[label]
        elif choice == "version":
            number = model_spec.version.value
        found = self.store.available_version(number) if name == self.store.name else None
        if found is None:
            request = f"Latest({name})" if number is None else f"Specific({name}, {number})"
            raise not_found(f"Servable not found for request: {request}")
        return found

    def predict_arrays(
        self, model_spec, decode_inputs: InputDecoder, output_filter: Any = ()
    ) -> tuple[Version, str, dict[str, np.ndarray]]:
        """Predict for both transports: resolve, find the signature, then decode the inputs, check and run.

        ``decode_inputs`` is called only once the servable and its signature are
        found, so an unknown model or signature fails before any decoding.
        Returns the version, the signature's name and the asked outputs.
        """
        version = self.resolve(model_spec)
        signature = model_spec.signature_name or signatures.DEFAULT_SIGNATURE
        signature_def = signatures.signature_for_predict(version, signature)
        inputs = decode_inputs(signature_def.inputs)
        return version, signature, signatures.predict(version, signature, inputs, output_filter)

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        budget = self.budget()

        def decode(_info) -> dict[str, np.ndarray]:
            items = list(request.inputs.items())
            checked = [check_request_tensor(name, proto, budget) for name, proto in items]  # all, before any decoding
            return {
                name: tensors.to_ndarray(proto, checked=facts)
                for (name, proto), facts in zip(items, checked, strict=True)
            }

        try:
            version, signature, outputs = self.predict_arrays(request.model_spec, decode, request.output_filter)
            response = predict_pb2.PredictResponse()
            _model_spec(response.model_spec, version, request.model_spec.name, signature)
            for alias, array in outputs.items():
                tensors.fill_tensor_proto(response.outputs[alias], array)
            return response
        finally:
            self.memory.note(budget.used)

    def classify(self, request: classification_pb2.ClassificationRequest) -> classification_pb2.ClassificationResponse:
        version = self.resolve(request.model_spec)
        signature = request.model_spec.signature_name or signatures.DEFAULT_SIGNATURE
        budget = self.budget()
        try:
            classes, scores = signatures.classify(version, signature, serialized_examples(request.input, budget))
        finally:
            self.memory.note(budget.used)
        response = classification_pb2.ClassificationResponse()
        _model_spec(response.model_spec, version, request.model_spec.name, signature)
        rows = (classes if classes is not None else scores).shape
        for i in range(rows[0]):
            out = response.result.classifications.add()
            for c in range(rows[1]):
                cls = out.classes.add()
                if classes is not None:
                    cls.label = (
                        classes[i, c].decode("utf-8", "replace")
                        if isinstance(classes[i, c], bytes)
                        else str(classes[i, c])
                    )
                if scores is not None:
                    cls.score = float(scores[i, c])
        return response

    def regress(self, request: regression_pb2.RegressionRequest) -> regression_pb2.RegressionResponse:
        version = self.resolve(request.model_spec)
        signature = request.model_spec.signature_name or signatures.DEFAULT_SIGNATURE
        budget = self.budget()
        try:
            values = signatures.regress(version, signature, serialized_examples(request.input, budget))
        finally:
            self.memory.note(budget.used)
        response = regression_pb2.RegressionResponse()
        _model_spec(response.model_spec, version, request.model_spec.name, signature)
        for value in values:
            response.result.regressions.add(value=float(value))
        return response

    def metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF:
                raise invalid(f"Metadata field {field} is not supported")
        version = self.resolve(request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        _model_spec(response.model_spec, version, request.model_spec.name)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in version.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature)
        response.metadata[SIGNATURE_DEF].Pack(signature_map)
        return response

    def status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        spec = request.model_spec
        versions = self.store.versions() if spec.name == self.store.name else []
        if spec.HasField("version"):  # a version label is not looked at, as in TF Serving's GetModelStatusImpl
            versions = [v for v in versions if v.number == spec.version.value]
            if not versions:
                raise not_found(f"Could not find version {spec.version.value} of model {spec.name}")
        if not versions:
            raise not_found(f"Could not find any versions of model {spec.name}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for version in versions:
            entry = response.model_version_status.add()
            entry.version = version.number
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(version.state)
            entry.status.SetInParent()  # TF Serving always reports a status, OK included
            if version.error:
                entry.status.error_code = 13  # INTERNAL: the load failed
                entry.status.error_message = version.error
        return response


def check_request_tensor(name: str, proto, budget: tensors.Budget) -> tensors.TensorCheck:
    """``tensors.check_tensor`` with the server's errors: INVALID_ARGUMENT naming the input (and the limit)."""
    try:
        return tensors.check_tensor(proto, budget)
    except tensors.TensorTooLarge as e:
        raise invalid(f"input '{name}': {e}") from None
    except ValueError as e:
        raise invalid(f"tensor parsing error: {name}: {e}") from None


def serialized_examples(model_input, budget: tensors.Budget | None = None) -> list[bytes]:
    """tf.Example list (or list + context, merged into each) as serialized strings.

    They become the model's string input, so they count against ``budget`` like
    one (each its serialized size plus ``STRING_ELEMENT_BYTES``), checked before
    any is serialized: a large context would otherwise be copied into every example.
    """
    budget = budget if budget is not None else tensors.Budget(float("inf"))
    budget.begin()
    kind = model_input.WhichOneof("kind")
    if kind == "example_list":
        examples = model_input.example_list.examples
        context = 0
    elif kind == "example_list_with_context":
        examples = model_input.example_list_with_context.examples
        context = model_input.example_list_with_context.context.ByteSize()
    else:
        return []
    what = f"the {len(examples)} examples" + (f" with a context of {context} bytes merged into each" if context else "")
    try:
        budget.take(len(examples) * (context + tensors.STRING_ELEMENT_BYTES), what)
        for example in examples:
            budget.take(example.ByteSize(), what)
    except tensors.TensorTooLarge as e:
        raise invalid(str(e)) from None
    if kind == "example_list":
        return [e.SerializeToString() for e in examples]
    context_message = model_input.example_list_with_context.context
    merged = []
    for example in examples:
        full = example_pb2.Example()
        full.CopyFrom(context_message)
        full.MergeFrom(example)
        merged.append(full.SerializeToString())
    return merged
