"""Ask a TensorFlow Serving model server (or ``kubeflow-jupyter serve``) for predictions.

    from kubeflow_jupyter.serving.client import PredictionClient
    with PredictionClient("localhost:9000") as client:               # gRPC
        outputs = client.predict("inception", {"images": [jpeg]}, signature="predict_images")
    PredictionClient("localhost:8501", rest=True)                    # the REST API, same calls

gRPC uses the ``tensorflow-serving-api`` stubs. Failures raise
:class:`~kubeflow_jupyter.serving.errors.ServingError` subclasses whose text
says what is wrong in the user's terms (and what *is* served, when the server
can be asked), keeping the server's own code and message on the error.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import (
    InvalidRequest,
    ModelNotFound,
    ServerUnavailable,
    ServingError,
    ServingTimeout,
    SignatureNotFound,
)

SERVER_ENV = "KUBEFLOW_JUPYTER_MODEL_SERVER"
DEFAULT_GRPC = "localhost:9000"
DEFAULT_REST = "localhost:8501"
SERVED_MODELS_KEY = "x-served-models"  # the local server's hint on NOT_FOUND (see core.py)
_HTTP_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_SIGNATURE_MISSING = re.compile(
    r'Serving signature key "(.*)" not found\.|Serving signature name: "(.*)" not found in signature def'
    r"|No signature was found with the name: (.*)"
)
_SERVABLE_MISSING = re.compile(r"Servable not found for request: (?:Latest\((.*)\)|Specific\((.*), (\d+)\))")
_LABEL_MISSING = re.compile(r"Unrecognized servable version label: (.*)")
_PROBE_MODEL = "__served_models__"  # a name nobody serves: asking for it makes the server say what it does serve


def require_grpc() -> None:
    """gRPC speaks through tensorflow-serving-api's messages and stubs (the ``[tensorflow]`` extra);
    REST needs neither. Imported quietly, once."""
    from ..extras import require

    require(
        "tensorflow_serving.apis",
        "grpc",
        feature="the gRPC model client",
        alternative="or use the REST API (%model ... --rest, PredictionClient(server, rest=True))",
    )


def default_server(rest: bool = False) -> str:
    """``$KUBEFLOW_JUPYTER_MODEL_SERVER`` (the hub sets it on a cluster), else localhost:9000 (REST: :8501)."""
    return os.environ.get(SERVER_ENV) or (DEFAULT_REST if rest else DEFAULT_GRPC)


@dataclass(frozen=True)
class TensorInfo:
    dtype: str  # "string", "float", ...
    shape: tuple[int, ...] | None  # -1 for an unknown dimension; None for unknown rank


@dataclass(frozen=True)
class Signature:
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    method_name: str


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    version: int
    signatures: dict[str, Signature]


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str  # AVAILABLE, LOADING, UNLOADING, END, START, UNKNOWN
    error: str = ""


@dataclass
class _Target:
    model: str
    signature: str = ""
    version: int | None = None
    label: str | None = None

    def describe(self) -> str:
        pinned = (
            f" version {self.version}" if self.version is not None else (f" label {self.label!r}" if self.label else "")
        )
        return f"model {self.model!r}{pinned}"


class PredictionClient:
    """Predict / Classify / metadata / status over gRPC (default) or REST (``rest=True``)."""

    def __init__(self, server: str | None = None, *, rest: bool = False, timeout: float = 30.0):
        self.rest = rest
        self.server = (server or default_server(rest)).removeprefix("http://").rstrip("/")
        self.timeout = timeout
        self._channel = None
        self._stubs: dict[str, Any] = {}
        self._metadata_cache: dict[tuple, ModelMetadata] = {}

    def __enter__(self) -> PredictionClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    # -- the API ------------------------------------------------------------------
    def predict(
        self,
        model: str,
        inputs: Mapping[str, Any],
        *,
        signature: str = "",
        version: int | None = None,
        label: str | None = None,
        output_filter: Sequence[str] = (),
    ) -> dict[str, np.ndarray]:
        """Run a signature on named inputs (arrays, lists; bytes for DT_STRING); outputs as arrays."""
        target = _Target(model, signature, version, label)
        if self.rest:
            return self._rest_predict(target, inputs, output_filter)
        require_grpc()
        from tensorflow_serving.apis import predict_pb2

        from .tensors import to_ndarray, to_tensor_proto

        request = predict_pb2.PredictRequest()
        self._fill_spec(request.model_spec, target)
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(
                value if hasattr(value, "tensor_shape") else to_tensor_proto(_as_array(value))
            )
        request.output_filter.extend(output_filter)
        response = self._grpc("prediction", "Predict", request, target)
        return {name: to_ndarray(proto) for name, proto in response.outputs.items()}

    def send(self, request, method: str = "Predict"):
        """Send a ready-made request message (PredictRequest, ...) over gRPC; the raw response message."""
        target = _Target(
            request.model_spec.name,
            request.model_spec.signature_name,
            request.model_spec.version.value if request.model_spec.HasField("version") else None,
            request.model_spec.version_label or None,
        )
        return self._grpc("prediction", method, request, target)

    def classify(
        self,
        model: str,
        examples: Sequence[Mapping[str, Any]],
        *,
        signature: str = "",
        version: int | None = None,
        label: str | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Classify tf.Examples given as ``{feature: value or list}`` (bytes, int, float); (label, score) lists."""
        target = _Target(model, signature, version, label)
        if self.rest:
            body = {"examples": [{k: _json_feature(v) for k, v in ex.items()} for ex in examples]}
            if signature:
                body["signature_name"] = signature
            doc = self._http("POST", self._rest_path(target, ":classify"), target, body)
            return [[(str(lbl), float(score)) for lbl, score in row] for row in doc["results"]]
        require_grpc()
        from tensorflow_serving.apis import classification_pb2

        request = classification_pb2.ClassificationRequest()
        self._fill_spec(request.model_spec, target)
        for features in examples:
            _fill_example(request.input.example_list.examples.add(), features)
        response = self._grpc("prediction", "Classify", request, target)
        return [[(c.label, c.score) for c in cl.classes] for cl in response.result.classifications]

    def metadata(self, model: str, *, version: int | None = None, label: str | None = None) -> ModelMetadata:
        """The served version and its signatures (GetModelMetadata, ``GET .../metadata``)."""
        target = _Target(model, "", version, label)
        if self.rest:
            doc = self._http("GET", self._rest_path(target, "/metadata"), target)
            return _metadata_from_json(doc)
        require_grpc()
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._fill_spec(request.model_spec, target)
        response = self._grpc("prediction", "GetModelMetadata", request, target)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        from google.protobuf import json_format

        as_json = json.loads(json_format.MessageToJson(signature_map, preserving_proto_field_name=True))
        return _metadata_from_json(
            {
                "model_spec": {"name": response.model_spec.name, "version": str(response.model_spec.version.value)},
                "metadata": {"signature_def": as_json},
            }
        )

    def status(self, model: str, *, version: int | None = None) -> list[VersionStatus]:
        """Every version the server knows of the model and its state (GetModelStatus, ``GET /v1/models/NAME``)."""
        target = _Target(model, "", version)
        if self.rest:
            doc = self._http("GET", self._rest_path(target, ""), target)
            entries = doc.get("model_version_status", [])
            return [
                VersionStatus(int(e["version"]), e["state"], e.get("status", {}).get("error_message", ""))
                for e in entries
            ]
        require_grpc()
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._fill_spec(request.model_spec, target)
        response = self._grpc("model", "GetModelStatus", request, target)
        return [
            VersionStatus(
                s.version, get_model_status_pb2.ModelVersionStatus.State.Name(s.state), s.status.error_message
            )
            for s in response.model_version_status
        ]

    def served_models(self) -> dict[str, list[int]] | None:
        """``{model: available versions}`` when the server says what it serves, else None.

        TF Serving has no call that lists models; ``kubeflow-jupyter serve`` names them on every
        NOT_FOUND, so this asks for the status of a model nobody serves. No server: the
        :class:`ServerUnavailable` every other call would raise."""
        try:
            self.status(_PROBE_MODEL)
        except ModelNotFound as e:
            return e.served
        except (ServerUnavailable, ServingTimeout):
            raise
        except ServingError:
            return None
        return None

    # -- gRPC ---------------------------------------------------------------------
    def _stub(self, service: str):
        if service not in self._stubs:
            require_grpc()
            import grpc
            from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

            if self._channel is None:
                self._channel = grpc.insecure_channel(
                    self.server,
                    options=[
                        ("grpc.max_receive_message_length", 256 << 20),
                        ("grpc.max_send_message_length", 256 << 20),
                    ],
                )
            stub = (
                prediction_service_pb2_grpc.PredictionServiceStub
                if service == "prediction"
                else model_service_pb2_grpc.ModelServiceStub
            )
            self._stubs[service] = stub(self._channel)
        return self._stubs[service]

    def _grpc(self, service: str, method: str, request, target: _Target):
        require_grpc()
        import grpc

        try:
            return getattr(self._stub(service), method)(request, timeout=self.timeout)
        except grpc.RpcError as e:
            served = (
                dict(e.trailing_metadata() or ()).get(SERVED_MODELS_KEY) if hasattr(e, "trailing_metadata") else None
            )
            raise self._translate(e.code().name, e.details() or "", target, served) from None

    @staticmethod
    def _fill_spec(spec, target: _Target) -> None:
        spec.name = target.model
        if target.signature:
            spec.signature_name = target.signature
        if target.version is not None:
            spec.version.value = target.version
        if target.label:
            spec.version_label = target.label

    # -- REST ---------------------------------------------------------------------
    def _rest_path(self, target: _Target, suffix: str) -> str:
        from urllib.parse import quote

        path = f"/v1/models/{quote(target.model, safe='')}"
        if target.version is not None:
            path += f"/versions/{target.version}"
        elif target.label:
            path += f"/labels/{quote(target.label, safe='')}"
        return path + suffix

    def _http(self, method: str, path: str, target: _Target, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://{self.server}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace")
            try:
                message = json.loads(text).get("error", text)
            except (ValueError, AttributeError):
                message = text
            raise self._translate(
                _HTTP_CODES.get(e.code, "UNKNOWN"), message, target, e.headers.get(SERVED_MODELS_KEY)
            ) from None
        except TimeoutError:
            raise self._translate("DEADLINE_EXCEEDED", "timed out", target, None) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise self._translate("DEADLINE_EXCEEDED", str(e.reason), target, None) from None
            raise self._translate("UNAVAILABLE", str(e.reason), target, None) from None
        except (ConnectionError, OSError) as e:
            raise self._translate("UNAVAILABLE", str(e), target, None) from None

    def _rest_predict(
        self, target: _Target, inputs: Mapping[str, Any], output_filter: Sequence[str]
    ) -> dict[str, np.ndarray]:
        # The columnar form keeps each tensor's exact shape; the signature's output
        # types (metadata) turn JSON back into the arrays gRPC would have given.
        body: dict[str, Any] = {"inputs": {name: _json_tensor(_as_array(v)) for name, v in inputs.items()}}
        if target.signature:
            body["signature_name"] = target.signature
        doc = self._http("POST", self._rest_path(target, ":predict"), target, body)
        signature = self._signature(target)
        outputs = doc["outputs"]
        names = list(output_filter) or sorted(signature.outputs)
        if len(signature.outputs) == 1 or not isinstance(outputs, dict):
            outputs = {names[0]: outputs}
        return {
            name: _from_json(value, signature.outputs[name].dtype)
            for name, value in outputs.items()
            if not output_filter or name in output_filter
        }

    def _signature(self, target: _Target) -> Signature:
        key = (target.model, target.version, target.label)
        if key not in self._metadata_cache:
            self._metadata_cache[key] = self.metadata(target.model, version=target.version, label=target.label)
        signatures = self._metadata_cache[key].signatures
        return signatures[target.signature or "serving_default"]

    # -- errors -------------------------------------------------------------------
    def _translate(self, code: str, message: str, target: _Target, served_hint: str | None) -> ServingError:
        error = self._error_for(code, message, target, served_hint)
        if isinstance(error, ModelNotFound):
            error.served = _served(served_hint)
        return error

    def _error_for(self, code: str, message: str, target: _Target, served_hint: str | None) -> ServingError:
        where = f"on {self.server}"
        kw = {"code": code, "server_message": message}
        if code == "UNAVAILABLE":
            return ServerUnavailable(
                f"no model server answers at {self.server} ({'REST' if self.rest else 'gRPC'}): start one with "
                "`%model serve MODEL_BASE_PATH --model-name NAME` (or `kubeflow-jupyter serve MODEL_BASE_PATH "
                f"--model-name NAME`), or point --server / ${SERVER_ENV} at a running one",
                **kw,
            )
        if code == "DEADLINE_EXCEEDED":
            return ServingTimeout(
                f"the model server at {self.server} did not answer within {self.timeout:g}s "
                f"for {target.describe()}: retry with a longer timeout",
                **kw,
            )
        if m := _SERVABLE_MISSING.search(message):
            latest_name, name, number = m.groups()
            if latest_name is not None:
                return ModelNotFound(f"no model named {latest_name!r} {where}{self._what_is_served(served_hint)}", **kw)
            versions = self._versions_of(name)
            if versions:
                return ModelNotFound(
                    f"model {name!r} has no version {number} {where} "
                    f"(versions served: {', '.join(map(str, versions))})",
                    **kw,
                )
            return ModelNotFound(f"no model named {name!r} {where}{self._what_is_served(served_hint)}", **kw)
        if m := _LABEL_MISSING.search(message):
            return ModelNotFound(
                f"{target.model!r} has no version label {m.group(1)!r} {where}: pin a version "
                "number instead, or start the server with --label LABEL=VERSION",
                **kw,
            )
        if m := _SIGNATURE_MISSING.search(message):
            name = next(g for g in m.groups() if g is not None)
            return SignatureNotFound(
                f"{target.describe()} has no signature {name!r}{self._signatures_of(target)}", **kw
            )
        if code == "NOT_FOUND":
            return ModelNotFound(f"{target.describe()} not found {where}: {message}", **kw)
        if code == "INVALID_ARGUMENT":
            sig = f" (signature {target.signature!r})" if target.signature else ""
            return InvalidRequest(
                f"the model server rejected the request to {target.describe()}{sig}: {_essential(message)}", **kw
            )
        return ServingError(
            f"the model server at {self.server} failed ({code}) for {target.describe()}: {message}", **kw
        )

    @staticmethod
    def _what_is_served(hint: str | None) -> str:
        served = _served(hint) or {}
        parts = [
            f"{name!r} (versions {', '.join(map(str, versions))})" if versions else f"{name!r} (no version loaded yet)"
            for name, versions in served.items()
        ]
        return f"; it serves {', '.join(parts)}" if parts else ""

    def _versions_of(self, model: str) -> list[int]:
        try:
            return [s.version for s in self.status(model) if s.state == "AVAILABLE"]
        except ServingError:
            return []

    def _signatures_of(self, target: _Target) -> str:
        try:
            names = sorted(
                n
                for n in self.metadata(target.model, version=target.version, label=target.label).signatures
                if not n.startswith("__")
            )
        except ServingError:
            return ""
        return f"; its signatures: {', '.join(names)}" if names else ""


def _served(hint: str | None) -> dict[str, list[int]] | None:
    """The local server's NOT_FOUND hint, ``{"name": [versions]}`` as JSON; None without one."""
    if not hint:
        return None
    try:
        served = json.loads(hint)
    except ValueError:
        return None
    return served if isinstance(served, dict) else None


def _essential(message: str) -> str:
    """TensorFlow's runtime errors wrap the cause in graph-trace noise: keep the cause."""
    noise = ("Graph execution error", "Detected at node", "<stack traces", "[[")
    lines = [line.strip() for line in message.splitlines()]
    kept = [line for line in lines if line and not line.startswith(noise)]
    return " ".join(kept) or message


# -- conversions ---------------------------------------------------------------------


def _as_array(value: Any) -> np.ndarray:
    """Arrays keep their dtype; Python numbers become float32 / int32, as ``tf.make_tensor_proto`` makes them."""
    if isinstance(value, (bytes, str)):
        return np.array(value, dtype=object)
    if isinstance(value, (list, tuple)) and _leaf_is_bytes(value):
        return np.array(value, dtype=object)
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value)
    array = np.asarray(value)
    return array.astype({"f": np.float32, "i": np.int32}.get(array.dtype.kind, array.dtype), copy=False)


def _leaf_is_bytes(value: Any) -> bool:
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    return isinstance(value, (bytes, str))


def _json_tensor(array: np.ndarray) -> Any:
    if array.dtype.kind not in "OSU":
        return array.tolist()

    def convert(v):
        if isinstance(v, list):
            return [convert(x) for x in v]
        raw = v if isinstance(v, bytes) else str(v).encode()
        return {"b64": base64.b64encode(raw).decode()}

    return convert(array.tolist())


def _from_json(value: Any, dtype: str) -> np.ndarray:
    if dtype != "string":
        return np.asarray(value, dtype=np.dtype(_NUMPY_TYPES.get(dtype, "float32")))

    def convert(v):
        if isinstance(v, list):
            return [convert(x) for x in v]
        if isinstance(v, dict) and "b64" in v:
            return base64.b64decode(v["b64"])
        return str(v).encode()

    return np.array(convert(value), dtype=object)


_NUMPY_TYPES = {
    "float": "float32",
    "double": "float64",
    "int32": "int32",
    "int64": "int64",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
    "uint32": "uint32",
    "uint64": "uint64",
}


def _json_feature(value: Any) -> Any:
    values = value if isinstance(value, (list, tuple)) else [value]
    return [{"b64": base64.b64encode(v).decode()} if isinstance(v, bytes) else v for v in values]


def _fill_example(example, features: Mapping[str, Any]) -> None:
    for name, value in features.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        feature = example.features.feature[name]
        for v in values:
            if isinstance(v, (bytes, str)):
                feature.bytes_list.value.append(v if isinstance(v, bytes) else v.encode())
            elif isinstance(v, (bool, int, np.integer)):
                feature.int64_list.value.append(int(v))
            else:
                feature.float_list.value.append(float(v))


def _metadata_from_json(doc: dict) -> ModelMetadata:
    spec = doc.get("model_spec", {})
    raw = doc.get("metadata", {}).get("signature_def", {}).get("signature_def", {})

    def infos(entries: dict) -> dict[str, TensorInfo]:
        out = {}
        for name, info in entries.items():
            shape_doc = info.get("tensor_shape", {})
            shape = (
                None
                if shape_doc.get("unknown_rank")
                else tuple(int(d.get("size", 0)) for d in shape_doc.get("dim", []))
            )
            out[name] = TensorInfo(info.get("dtype", "DT_INVALID").removeprefix("DT_").lower(), shape)
        return out

    signatures = {
        name: Signature(infos(sig.get("inputs", {})), infos(sig.get("outputs", {})), sig.get("method_name", ""))
        for name, sig in raw.items()
    }
    return ModelMetadata(spec.get("name", ""), int(spec.get("version", 0) or 0), signatures)
