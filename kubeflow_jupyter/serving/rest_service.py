"""The REST API: TF Serving's ``/v1/models/...`` JSON over the core, mounted on the HTTP front end.

``POST /v1/models/NAME[/versions/N|/labels/L]:predict|:classify|:regress`` and
``GET /v1/models/NAME[/versions/N|/labels/L][/metadata]``, as TF Serving's
HttpRestApiHandler answers them: the path and body become the same model spec and
inputs a gRPC request carries, the core (:mod:`.core`) does the rest, and a
:class:`~.server_errors.ServingStatus` becomes TF Serving's HTTP status with
``{"error": "..."}``. :func:`rest_app` is what :mod:`.httpd` serves.
"""

from __future__ import annotations

import json
import logging
import re
from http import HTTPStatus
from urllib.parse import unquote

from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    regression_pb2,
)

from . import httpd, rest_json, tensors
from .core import SERVED_MODELS_KEY, SIGNATURE_DEF, ModelServerCore, served_models
from .rest_json import INT64_MAX, MAX_JSON_DEPTH, short
from .server_errors import ServingStatus, SignatureMissing, invalid

log = logging.getLogger(__name__)

# TF Serving's ToHTTPStatusCode.
HTTP_STATUS = {
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}

_PREDICT_PATH = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)", re.I)
_STATUS_PATH = re.compile(r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?", re.I)


def _spec_from_path(spec, name: str, version: str | None, label: str | None) -> None:
    spec.name = unquote(name)
    if version:
        if len(version) > 19 or int(version) > INT64_MAX:  # \d+: digits only, so int() is safe once short
            raise invalid(
                f"Failed to convert version: {version[:40]}{'...' if len(version) > 40 else ''} to numeric: "
                f"the version must be a whole number from 0 to {INT64_MAX} (int64)"
            )
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
            return 400, {
                "error": f"JSON Parse error: the document is nested too deeply (at most {MAX_JSON_DEPTH} "
                "levels of arrays and objects)"
            }
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
            doc = rest_json.parse_json(body)
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
            return json.loads(
                json_format.MessageToJson(self.core.status(request), always_print_fields_with_no_presence=True)
            )
        raise invalid(f"Malformed request: {method} {path}")

    def _predict(self, name: str, version: str | None, label: str | None, doc: dict) -> dict:
        spec = model_pb2.ModelSpec()
        _spec_from_path(spec, name, version, label)
        spec.signature_name = rest_json.signature_name(doc)
        budget = self.core.budget()

        def decode(info) -> dict:
            info = dict(info)
            if not info:
                raise invalid(f"Failed to get input map for signature: {spec.signature_name or 'DEFAULT'}")
            if "instances" in doc and "inputs" in doc:
                raise invalid(
                    f"JSON Value: {short(doc)} Not formatted correctly expecting only one of 'inputs' or "
                    "'instances' keys to exist "
                )
            if "instances" in doc:
                return rest_json.instances(doc["instances"], info, budget)
            if "inputs" in doc:
                return rest_json.columns(doc["inputs"], info, budget)
            raise invalid("Missing 'inputs' or 'instances' key")

        try:
            _, _, outputs = self.core.predict_arrays(spec, decode)
        except SignatureMissing as e:  # the same refusal, in the words of TF Serving's REST handler
            raise invalid(f'Serving signature name: "{e.signature}" not found in signature def') from None
        if "instances" not in doc:
            if len(outputs) == 1:
                ((alias, array),) = outputs.items()
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
        request = (
            classification_pb2.ClassificationRequest() if verb == "classify" else regression_pb2.RegressionRequest()
        )
        _spec_from_path(request.model_spec, name, version, label)
        signature = rest_json.signature_name(doc)
        if signature:
            request.model_spec.signature_name = signature
        examples = doc.get("examples")
        if examples is None:
            raise invalid(
                f"JSON Value: {short(doc)} When method is {verb}, key 'examples' is expected and was not found"
            )
        if not isinstance(examples, list):
            raise invalid(f"JSON Value: {short(doc)} Expecting 'examples' value to be an list/array")
        if not examples:
            raise invalid(f"JSON Value: {short(doc)} 'examples' value is an empty array")
        if "context" in doc:
            target = request.input.example_list_with_context
            rest_json.example_from_json(doc["context"], target.context)
        else:
            target = request.input.example_list
        for item in examples:
            rest_json.example_from_json(item, target.examples.add())
        if verb == "regress":
            return {"results": [r.value for r in self.core.regress(request).result.regressions]}
        response = self.core.classify(request)
        return {"results": [[[c.label, c.score] for c in cl.classes] for cl in response.result.classifications]}


def _metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> dict:
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF].Unpack(signature_map)

    def as_json(message) -> dict:
        return json.loads(
            json_format.MessageToJson(
                message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
        )

    return {"model_spec": as_json(response.model_spec), "metadata": {SIGNATURE_DEF: as_json(signature_map)}}


def rest_app(api: RestApi) -> httpd.App:
    """The REST API as the HTTP front end calls it: (method, target, body) -> (status, headers, JSON)."""

    def app(method: str, target: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        status, doc = api.handle(method, target, body)
        headers = [(SERVED_MODELS_KEY, served_models(api.core.store))] if status == HTTPStatus.NOT_FOUND else []
        return status, headers, httpd.json_payload(doc)

    return app
