"""A local model server that speaks TensorFlow Serving's gRPC and REST APIs.

    kubeflow-jupyter serve ./export --model-name digits      # gRPC :9000, REST :8501

gRPC: ``tensorflow.serving.PredictionService`` (Predict, Classify, Regress,
GetModelMetadata) and ``ModelService.GetModelStatus``, on the message types of
``tensorflow-serving-api``. REST: ``/v1/models/NAME[/versions/N|/labels/L]``
with ``:predict`` / ``:classify`` / ``:regress`` (POST) and status / ``/metadata`` (GET).
Errors carry TF Serving's status codes and messages; REST maps them to HTTP
codes with ``{"error": "..."}`` as TF Serving does. Like TF Serving the API has
no authentication, so the server binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from concurrent import futures
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    regression_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from . import httpd, servables, tensors
from .memory import MemoryReturner
from .servables import ModelStore, ServingStatus, invalid

log = logging.getLogger(__name__)

# TF Serving's ToHTTPStatusCode.
HTTP_STATUS = {
    "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501,
    "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}
# Sent with NOT_FOUND so that a client can say what *is* served (the message stays TF Serving's).
SERVED_MODELS_KEY = "x-served-models"

SIGNATURE_DEF = "signature_def"


def _model_spec(response_spec, version: servables.Version, name: str, signature: str = "") -> None:
    response_spec.name = name
    response_spec.version.value = version.number
    if signature:
        response_spec.signature_name = signature


# -- the four calls, shared by gRPC and REST ---------------------------------

class ModelServerCore:
    """Predict / Classify / GetModelMetadata / GetModelStatus on proto messages.

    Every request tensor is checked (shape, values against the shape, size) before
    it is decoded, and a request's inputs together may take at most
    ``max_request_tensor_bytes`` once decoded: a 100-byte message can describe a
    billion-element tensor (TensorFlow repeats the last value to fill the shape).
    """

    def __init__(self, store: ModelStore, max_request_tensor_bytes: int = tensors.DEFAULT_MAX_REQUEST_TENSOR_BYTES,
                 memory: MemoryReturner | None = None):
        self.store = store
        self.max_request_tensor_bytes = max_request_tensor_bytes
        self.memory = memory or MemoryReturner()

    def budget(self) -> tensors.Budget:
        return tensors.Budget(self.max_request_tensor_bytes)

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        version = self.store.resolve(request.model_spec)
        signature = request.model_spec.signature_name or servables.DEFAULT_SIGNATURE
        servables.SignatureFacts.of(version, signature)  # an unknown signature fails before any decoding
        budget = self.budget()
        try:
            items = list(request.inputs.items())
            checked = [check_request_tensor(name, proto, budget) for name, proto in items]  # all, before any decoding
            inputs = {name: tensors.to_ndarray(proto, checked=facts) for (name, proto), facts in zip(items, checked)}
            del checked  # it holds a copy of each tensor_content
            outputs = servables.predict(version, signature, inputs, request.output_filter)
            del inputs
            response = predict_pb2.PredictResponse()
            _model_spec(response.model_spec, version, request.model_spec.name, signature)
            for alias, array in outputs.items():
                tensors.fill_tensor_proto(response.outputs[alias], array)
            return response
        finally:
            self.memory.note(budget.used)

    def classify(self, request: classification_pb2.ClassificationRequest) -> classification_pb2.ClassificationResponse:
        version = self.store.resolve(request.model_spec)
        signature = request.model_spec.signature_name or servables.DEFAULT_SIGNATURE
        budget = self.budget()
        try:
            classes, scores = servables.classify(version, signature, serialized_examples(request.input, budget))
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
                    cls.label = classes[i, c].decode("utf-8", "replace") if isinstance(classes[i, c], bytes) else str(classes[i, c])
                if scores is not None:
                    cls.score = float(scores[i, c])
        return response

    def regress(self, request: regression_pb2.RegressionRequest) -> regression_pb2.RegressionResponse:
        version = self.store.resolve(request.model_spec)
        signature = request.model_spec.signature_name or servables.DEFAULT_SIGNATURE
        budget = self.budget()
        try:
            values = servables.regress(version, signature, serialized_examples(request.input, budget))
        finally:
            self.memory.note(budget.used)
        response = regression_pb2.RegressionResponse()
        _model_spec(response.model_spec, version, request.model_spec.name, signature)
        for value in values:
            response.result.regressions.add(value=float(value))
        return response

    def metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF:
                raise invalid(f"Metadata field {field} is not supported")
        version = self.store.resolve(request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        _model_spec(response.model_spec, version, request.model_spec.name)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in version.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature)
        response.metadata[SIGNATURE_DEF].Pack(signature_map)
        return response

    def status(self, request: get_model_status_pb2.GetModelStatusRequest) -> get_model_status_pb2.GetModelStatusResponse:
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        spec = request.model_spec
        versions = self.store.versions() if spec.name == self.store.name else []
        if spec.HasField("version"):  # a version label is not looked at, as in TF Serving's GetModelStatusImpl
            versions = [v for v in versions if v.number == spec.version.value]
            if not versions:
                raise ServingStatus("NOT_FOUND", f"Could not find version {spec.version.value} of model {spec.name}")
        if not versions:
            raise ServingStatus("NOT_FOUND", f"Could not find any versions of model {spec.name}")
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


# -- gRPC ----------------------------------------------------------------------

def _grpc_call(method: Callable, core: ModelServerCore) -> Callable:
    def handler(request, context: grpc.ServicerContext):
        try:
            return method(request)
        except ServingStatus as status:
            if status.code == "NOT_FOUND":
                context.set_trailing_metadata(((SERVED_MODELS_KEY, _served(core.store)),))
            context.abort(getattr(grpc.StatusCode, status.code), status.message)
        except MemoryError:
            log.exception("request failed")
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the server ran out of memory for this request")
        except Exception as e:  # keep serving whatever one request hit
            log.exception("request failed")
            context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")
    return handler


def _served(store: ModelStore) -> str:
    return json.dumps({store.name: store.available()})


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ModelServerCore):
        self.Predict = _grpc_call(core.predict, core)
        self.Classify = _grpc_call(core.classify, core)
        self.Regress = _grpc_call(core.regress, core)
        self.GetModelMetadata = _grpc_call(core.metadata, core)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ModelServerCore):
        self.GetModelStatus = _grpc_call(core.status, core)


# -- REST -------------------------------------------------------------------------

_PREDICT_PATH = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)", re.I)
_STATUS_PATH = re.compile(r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?", re.I)


INT64_MAX = (1 << 63) - 1
MAX_JSON_DEPTH = 64  # arrays and objects, the document's own object included


def _spec_from_path(spec, name: str, version: str | None, label: str | None) -> None:
    spec.name = unquote(name)
    if version:
        if len(version) > 19 or int(version) > INT64_MAX:  # \d+: digits only, so int() is safe once short
            raise invalid(f"Failed to convert version: {version[:40]}{'...' if len(version) > 40 else ''} to numeric: "
                          f"the version must be a whole number from 0 to {INT64_MAX} (int64)")
        spec.version.value = int(version)
    if label:
        spec.version_label = unquote(label)


class RestApi:
    """TF Serving's HttpRestApiHandler: one path + body -> (HTTP status, JSON body).

    Bounded like the gRPC API: a document nested deeper than ``MAX_JSON_DEPTH`` is
    refused before it is parsed, and the tensors made from it count against the
    request's tensor budget before they are made (every value is already in the
    body, but numpy and TensorFlow copies multiply it).
    """

    def __init__(self, core: ModelServerCore):
        self.core = core

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        try:
            return 200, self._dispatch(method, path.split("?", 1)[0], body)
        except ServingStatus as status:
            return HTTP_STATUS.get(status.code, 500), {"error": status.message}
        except RecursionError:  # the depth check should make this impossible; never a 500 for it
            return 400, {"error": f"JSON Parse error: the document is nested too deeply (at most {MAX_JSON_DEPTH} "
                                  "levels of arrays and objects)"}
        except MemoryError:
            log.exception("REST request failed")
            return 503, {"error": "the server ran out of memory for this request"}
        except Exception as e:  # keep serving whatever one request hit
            log.exception("REST request failed")
            return 500, {"error": f"{type(e).__name__}: {e}"}
        finally:
            self.core.memory.note(len(body) * 4)  # parsed JSON takes several times its text

    def _dispatch(self, method: str, path: str, body: bytes) -> dict:
        if method == "POST" and (m := _PREDICT_PATH.fullmatch(path)):
            name, version, label, verb = m.groups()
            doc = _parse_json(body)
            if verb.lower() == "predict":
                return self._predict(name, version, label, doc)
            return self._classify_or_regress(verb.lower(), name, version, label, doc)
        if method == "GET" and (m := _STATUS_PATH.fullmatch(path)):
            name, version, label, sub = m.groups()
            if not name:
                raise invalid("Missing model name in request.")
            if sub:
                request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[SIGNATURE_DEF])
                _spec_from_path(request.model_spec, name, version, label)
                return _metadata_json(self.core.metadata(request))
            request = get_model_status_pb2.GetModelStatusRequest()
            _spec_from_path(request.model_spec, name, version, label)
            return json.loads(json_format.MessageToJson(self.core.status(request), always_print_fields_with_no_presence=True))
        raise invalid(f"Malformed request: {method} {path}")

    def _predict(self, name: str, version: str | None, label: str | None, doc: dict) -> dict:
        request = predict_pb2.PredictRequest()
        _spec_from_path(request.model_spec, name, version, label)
        signature = _signature_name(doc)
        servable = self.core.store.resolve(request.model_spec)
        signature_def = servable.signature_defs.get(signature or servables.DEFAULT_SIGNATURE)
        if signature_def is None:
            raise invalid(f'Serving signature name: "{signature or servables.DEFAULT_SIGNATURE}" not found in signature def')
        inputs_info = dict(signature_def.inputs)
        if not inputs_info:
            raise invalid(f"Failed to get input map for signature: {signature or 'DEFAULT'}")
        if "instances" in doc and "inputs" in doc:
            raise invalid(f"JSON Value: {_short(doc)} Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ")
        budget = self.core.budget()
        if "instances" in doc:
            row_format, inputs = True, _instances(doc["instances"], inputs_info, budget)
        elif "inputs" in doc:
            row_format, inputs = False, _columns(doc["inputs"], inputs_info, budget)
        else:
            raise invalid("Missing 'inputs' or 'instances' key")
        outputs = servables.predict(servable, signature, inputs)
        if not row_format:
            if len(outputs) == 1:
                (alias, array), = outputs.items()
                return {"outputs": tensors.ndarray_to_json(array, alias)}
            return {"outputs": {a: tensors.ndarray_to_json(v, a) for a, v in outputs.items()}}
        batch = {a: v.shape[0] if v.ndim else None for a, v in outputs.items()}
        sizes = set(batch.values())
        if None in sizes:
            raise invalid(f"Tensor name: {next(a for a, b in batch.items() if b is None)} has no shape information ")
        if len(sizes) > 1:
            raise invalid(f"Tensor outputs have inconsistent batch sizes: {batch}")
        as_json = {a: tensors.ndarray_to_json(v, a) for a, v in outputs.items()}
        n = sizes.pop() if sizes else 0
        if len(as_json) == 1:
            (values,) = as_json.values()
            return {"predictions": values}
        return {"predictions": [{a: as_json[a][i] for a in as_json} for i in range(n)]}

    def _classify_or_regress(self, verb: str, name: str, version: str | None, label: str | None, doc: dict) -> dict:
        request = (classification_pb2.ClassificationRequest() if verb == "classify"
                   else regression_pb2.RegressionRequest())
        _spec_from_path(request.model_spec, name, version, label)
        signature = _signature_name(doc)
        if signature:
            request.model_spec.signature_name = signature
        examples = doc.get("examples")
        if examples is None:
            raise invalid(f"JSON Value: {_short(doc)} When method is {verb}, key 'examples' is expected and was not found")
        if not isinstance(examples, list):
            raise invalid(f"JSON Value: {_short(doc)} Expecting 'examples' value to be an list/array")
        if not examples:
            raise invalid(f"JSON Value: {_short(doc)} 'examples' value is an empty array")
        if "context" in doc:
            target = request.input.example_list_with_context
            _example_from_json(doc["context"], target.context)
        else:
            target = request.input.example_list
        for item in examples:
            _example_from_json(item, target.examples.add())
        if verb == "regress":
            return {"results": [r.value for r in self.core.regress(request).result.regressions]}
        response = self.core.classify(request)
        return {"results": [[[c.label, c.score] for c in cl.classes] for cl in response.result.classifications]}


def _parse_json(body: bytes) -> dict:
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise invalid(f"JSON Parse error: the document nests arrays and objects {depth} levels deep; at most "
                      f"{MAX_JSON_DEPTH} are allowed")
    try:
        doc = json.loads(body)
    except RecursionError:
        raise invalid(f"JSON Parse error: the document is nested too deeply (at most {MAX_JSON_DEPTH} levels)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise invalid(f"JSON Parse error: {e}") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {_short(doc)} Is not object")
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
        levels = np.cumsum(steps[start:start + chunk], dtype=np.int64)
        deepest = max(deepest, depth + int(levels.max()))
        depth += int(levels[-1])
    return deepest


def _signature_name(doc: dict) -> str:
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid(f"JSON Value: {_short(doc)} not formatted correctly. 'signature_name' key must be a string value.")
    return name


def _instances(items: Any, info: dict, budget: tensors.Budget) -> dict[str, np.ndarray]:
    """Row format: each element one example (a value, or an object with one key per input)."""
    if not isinstance(items, list):
        raise invalid("Expecting 'instances' to be an list/array")
    if not items:
        raise invalid("No values in 'instances' array")
    as_objects = isinstance(items[0], dict) and not tensors.is_b64(items[0])
    if not as_objects and len(info) > 1:
        raise invalid("instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map")
    columns: dict[str, list] = {name: [] for name in info}
    for index, item in enumerate(items):
        is_object = isinstance(item, dict) and not tensors.is_b64(item)
        if as_objects != is_object:
            kind = "object but got list" if as_objects else "value/list but got object"
            raise invalid(f"Expecting {kind} at item {index} of input list")
        if as_objects:
            if set(item) != set(info):
                raise invalid(f"Failed to process element: {index} of 'instances' list. JSON object: {_short(item)} "
                              f"keys must be equal to: {','.join(sorted(info))}")
            for name, value in item.items():
                columns[name].append(value)
        else:
            columns[next(iter(info))].append(item)
    return {name: _to_array(name, values, info[name].dtype, budget, batched=True) for name, values in columns.items()}


def _columns(value: Any, info: dict, budget: tensors.Budget) -> dict[str, np.ndarray]:
    """Columnar format: ``inputs`` is the one tensor, or an object of named tensors."""
    if not isinstance(value, dict) or tensors.is_b64(value):
        if len(info) > 1:
            raise invalid("inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map")
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


def _example_from_json(value: Any, example: example_pb2.Example) -> None:
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
                    raise invalid(f"Feature: {name} has an integer out of the range of int64: {_short(item)}")
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


def _metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> dict:
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF].Unpack(signature_map)
    as_json = lambda m: json.loads(json_format.MessageToJson(m, preserving_proto_field_name=True,
                                                            always_print_fields_with_no_presence=True))
    return {"model_spec": as_json(response.model_spec), "metadata": {SIGNATURE_DEF: as_json(signature_map)}}


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _rest_app(api: RestApi) -> httpd.App:
    """The REST API as the HTTP front end calls it: (method, target, body) -> (status, headers, JSON)."""

    def app(method: str, target: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        status, doc = api.handle(method, target, body)
        headers = [(SERVED_MODELS_KEY, _served(api.core.store))] if status == HTTPStatus.NOT_FOUND else []
        return status, headers, httpd.json_payload(doc)

    return app


# -- the server -------------------------------------------------------------------

def grpc_server(workers: int = 16, max_receive_bytes: int = 256 << 20) -> grpc.Server:
    """The gRPC server the model server runs on (the benchmark's no-op servicer uses the same)."""
    return grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                       options=[("grpc.max_receive_message_length", max_receive_bytes),
                                ("grpc.max_send_message_length", 256 << 20)])


def grpc_message_limit(max_request_tensor_bytes: int) -> int:
    """The largest gRPC request taken: four times the tensor limit (256 MiB by default), within gRPC's range."""
    return min(max(4 * max_request_tensor_bytes, 4 << 20), (1 << 31) - 1)


def configure_tensorflow(intra_op: int = 1, inter_op: int = 0) -> None:
    """TF Serving's --tensorflow_intra_op_parallelism / --tensorflow_inter_op_parallelism.

    Must run before TensorFlow executes anything in this process; model versions
    loaded afterwards use these in their sessions. ``intra_op`` 0 lets TensorFlow
    pick (one per core); ``inter_op`` 0 runs a request's ops in its own thread (see
    ``SessionBundle``). Requests already run side by side (the thread pool,
    batching), so handing each op to other threads and back only costs: on 2 cores
    the digits model's p50 latency was about 2x worse with TensorFlow's choice, and
    Inception v3 was no faster.
    """
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    tf.config.threading.set_inter_op_parallelism_threads(inter_op)


class ModelServer:
    """gRPC + REST over one ModelStore. ``start()`` returns once the latest version is loaded.

    Limits (see docs/serving.md, "Limits"): ``max_request_tensor_bytes`` for what a
    request's input tensors may take once decoded (gRPC messages may be 4x that);
    REST: ``rest_threads`` workers, ``rest_timeout`` seconds for a request to
    arrive, ``rest_max_connections`` open at once, ``rest_max_body_bytes`` per body.
    """

    def __init__(self, model_base_path: str | Path, model_name: str, *, host: str = "127.0.0.1",
                 port: int = 9000, rest_port: int | None = 8501, labels: dict[str, int] | None = None,
                 poll_seconds: float = 1.0, workers: int = 16, batching: bool = True, batch_timeout: float = 0.001,
                 announce: Callable[[str], None] | None = None,
                 max_request_tensor_bytes: int = tensors.DEFAULT_MAX_REQUEST_TENSOR_BYTES,
                 rest_threads: int | None = None, rest_timeout: float = httpd.DEFAULT_TIMEOUT,
                 rest_max_connections: int = httpd.DEFAULT_MAX_CONNECTIONS,
                 rest_max_body_bytes: int = httpd.DEFAULT_MAX_BODY_BYTES):
        self.announce = announce or (lambda message: print(message, flush=True))
        self.store = ModelStore(model_name, model_base_path, labels=labels, poll_seconds=poll_seconds,
                                on_change=self.announce, batching=batching, batch_timeout=batch_timeout)
        self.core = ModelServerCore(self.store, max_request_tensor_bytes=max_request_tensor_bytes)
        self.host = host
        self._grpc = grpc_server(workers, grpc_message_limit(max_request_tensor_bytes))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(self.core), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(self.core), self._grpc)
        self.port = self._grpc.add_insecure_port(f"{_bracket(host)}:{port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {host}:{port} for gRPC (in use?)")
        self._rest: httpd.HttpServer | None = None
        if rest_port is not None:
            self._rest = httpd.HttpServer(host, rest_port, _rest_app(RestApi(self.core)), threads=rest_threads,
                                          timeout=rest_timeout, max_connections=rest_max_connections,
                                          max_body_bytes=rest_max_body_bytes)
        self.rest_port = self._rest.port if self._rest else None

    def start(self) -> "ModelServer":
        self.store.start()
        self._grpc.start()
        if self._rest is not None:
            self._rest.start()
        rest = f", REST on http://{_bracket(self.host)}:{self.rest_port}/v1/models/{self.store.name}" if self._rest else ""
        versions = self.store.available()
        what = f"versions {', '.join(map(str, versions))}" if versions else "no version yet: waiting for one to appear"
        self.announce(f"serving model {self.store.name!r} from {self.store.base_path} ({what}); "
                      f"gRPC on {_bracket(self.host)}:{self.port}{rest}")
        return self

    def stop(self, grace: float = 1.0) -> None:
        self.store.stop()
        if self._rest is not None:
            self._rest.stop()
        self._grpc.stop(grace).wait()

    def wait(self) -> None:
        self._grpc.wait_for_termination()


def _stop_when_gone(pid: int, stop: threading.Event) -> None:
    import os

    while not stop.wait(1.0):
        if os.getppid() != pid:  # reparented: the process that started us has ended (even by SIGKILL)
            stop.set()


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve(model_base_path: str, model_name: str, *, host: str = "127.0.0.1", port: int = 9000,
          rest_port: int | None = 8501, labels: dict[str, int] | None = None, poll_seconds: float = 1.0,
          batching: bool = True, batch_timeout: float = 0.001, parent_pid: int | None = None, intra_op: int = 1,
          inter_op: int = 0, max_request_tensor_bytes: int = tensors.DEFAULT_MAX_REQUEST_TENSOR_BYTES,
          rest_threads: int | None = None, rest_timeout: float = httpd.DEFAULT_TIMEOUT,
          rest_max_connections: int = httpd.DEFAULT_MAX_CONNECTIONS,
          rest_max_body_bytes: int = httpd.DEFAULT_MAX_BODY_BYTES) -> int:
    """Run in the foreground until interrupted (the ``serve`` command), or until ``parent_pid`` is gone."""
    import signal

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {host}: the TF Serving API has no authentication, anyone who can reach "
              "this address can query the model", file=sys.stderr)
    configure_tensorflow(intra_op, inter_op)
    try:
        server = ModelServer(model_base_path, model_name, host=host, port=port, rest_port=rest_port,
                             labels=labels, poll_seconds=poll_seconds, batching=batching,
                             batch_timeout=batch_timeout, max_request_tensor_bytes=max_request_tensor_bytes,
                             rest_threads=rest_threads, rest_timeout=rest_timeout,
                             rest_max_connections=rest_max_connections, rest_max_body_bytes=rest_max_body_bytes).start()
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if parent_pid:
        threading.Thread(target=_stop_when_gone, args=(parent_pid, stop), daemon=True).start()
    stop.wait()
    server.stop()
    return 0
