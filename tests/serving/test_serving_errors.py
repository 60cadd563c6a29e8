"""TF Serving's error codes and messages, as the local server returns them, and what the client makes of them."""

from __future__ import annotations

import json
import urllib.request

import grpc
import numpy as np
import pytest
from support.ports import free_port
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from kubeflow_jupyter.errors import KubeflowJupyterError
from kubeflow_jupyter.serving.client import PredictionClient
from kubeflow_jupyter.serving.errors import (
    InvalidRequest,
    ModelNotFound,
    ServerUnavailable,
    SignatureNotFound,
)
from kubeflow_jupyter.serving.inception import classify_images, predict_request
from kubeflow_jupyter.serving.tensors import to_tensor_proto

pytestmark = pytest.mark.tensorflow


@pytest.fixture()
def stub(grpc_address):
    with grpc.insecure_channel(grpc_address) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _grpc_error(call, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    return info.value.code(), info.value.details()


def _rest(address: str, method: str, path: str, body=None) -> tuple[int, dict]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(f"http://{address}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_unknown_model_is_not_found_with_tf_servings_message(stub, rest_address, images):
    code, message = _grpc_error(stub.Predict, predict_request([images["red.jpg"]], model="resnet"))
    assert (code, message) == (grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(resnet)")
    code, message = _grpc_error(stub.Predict, predict_request([images["red.jpg"]], version=7))
    assert (code, message) == (grpc.StatusCode.NOT_FOUND, "Servable not found for request: Specific(inception, 7)")
    assert _rest(rest_address, "POST", "/v1/models/resnet:predict", {"instances": [1.0]}) == (
        404,
        {"error": "Servable not found for request: Latest(resnet)"},
    )
    assert _rest(rest_address, "GET", "/v1/models/resnet/metadata") == (
        404,
        {"error": "Servable not found for request: Latest(resnet)"},
    )


def test_unknown_signature_is_failed_precondition(stub, rest_address, images):
    code, message = _grpc_error(stub.Predict, predict_request([images["red.jpg"]], signature="predict_pixels"))
    assert (code, message) == (grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "predict_pixels" not found.')
    status, body = _rest(
        rest_address,
        "POST",
        "/v1/models/inception:predict",
        {"signature_name": "predict_pixels", "instances": [{"b64": ""}]},
    )
    assert (status, body) == (400, {"error": 'Serving signature name: "predict_pixels" not found in signature def'})
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = "inception", "nope"
    request.input.example_list.examples.add()
    assert _grpc_error(stub.Classify, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "No signature was found with the name: nope",
    )


def test_wrong_inputs_are_invalid_argument(stub, images):
    request = predict_request([images["red.jpg"]])
    request.inputs["pixels"].CopyFrom(request.inputs.pop("images"))
    code, message = _grpc_error(stub.Predict, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message == ("input tensor alias not found in signature: pixels. Inputs expected to be in the set {images}.")
    request = predict_request([images["red.jpg"]])
    request.inputs["extra"].CopyFrom(to_tensor_proto(np.zeros(1, np.float32)))
    assert _grpc_error(stub.Predict, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "input size does not match signature: 2!=1 len({extra,images}) != len({images}). "
        "Sent extra: {extra}. Missing but required: {}.",
    )
    request = predict_request([images["red.jpg"]])
    request.inputs["images"].CopyFrom(to_tensor_proto(np.zeros(1, np.float32)))
    code, message = _grpc_error(stub.Predict, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "to be string but float is provided" in message
    request = predict_request([images["red.jpg"]], signature="predict_images")
    request.output_filter.append("logits")
    assert _grpc_error(stub.Predict, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "output tensor alias not found in signature: logits Outputs expected to be in the set {classes,scores}.",
    )


def test_corrupt_image_is_invalid_argument_and_the_client_says_why(stub, grpc_address):
    code, message = _grpc_error(stub.Predict, predict_request([b"this is not a JPEG"]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "Unknown image file format" in message
    with pytest.raises(InvalidRequest) as info:
        classify_images([b"this is not a JPEG"], server=grpc_address)
    assert "Unknown image file format" in str(info.value) and "Graph execution error" not in str(info.value)


def test_bad_rest_requests_get_400_with_the_reason(rest_address):
    cases = [
        (b"{not json", "JSON Parse error"),
        (b"", "JSON Parse error: The document is empty"),
        ({"signature_name": "predict_images"}, "Missing 'inputs' or 'instances' key"),
        ({"signature_name": "predict_images", "instances": []}, "No values in 'instances' array"),
        ({"signature_name": "predict_images", "instances": [{"b64": "@@@"}]}, "Unable to base64 decode"),
        ({"signature_name": "predict_images", "instances": [1.5]}, "is not of expected type: string"),
        (
            {"signature_name": "predict_images", "instances": [], "inputs": []},
            "expecting only one of 'inputs' or 'instances'",
        ),
    ]
    for body, reason in cases:
        status, doc = _rest(rest_address, "POST", "/v1/models/inception:predict", body)
        assert status == 400 and reason in doc["error"], (body, doc)
    assert _rest(rest_address, "GET", "/v1/models") == (400, {"error": "Missing model name in request."})
    status, doc = _rest(rest_address, "POST", "/v1/models/inception:classify", {"signature_name": "serving_default"})
    assert status == 400 and "key 'examples' is expected and was not found" in doc["error"]


def test_model_status_errors(grpc_address):
    with grpc.insecure_channel(grpc_address) as channel:
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "resnet"
        assert _grpc_error(models.GetModelStatus, request) == (
            grpc.StatusCode.NOT_FOUND,
            "Could not find any versions of model resnet",
        )
        request.model_spec.name = "inception"
        request.model_spec.version.value = 3
        assert _grpc_error(models.GetModelStatus, request) == (
            grpc.StatusCode.NOT_FOUND,
            "Could not find version 3 of model inception",
        )


def test_client_errors_say_what_is_wrong_and_what_is_served(grpc_address, rest_address, images):
    for client in (PredictionClient(grpc_address), PredictionClient(rest_address, rest=True)):
        with pytest.raises(ModelNotFound) as info:
            client.predict("resnet", {"images": [images["red.jpg"]]})
        assert str(info.value) == f"no model named 'resnet' on {client.server}; it serves 'inception' (versions 1)"
        assert info.value.server_message == "Servable not found for request: Latest(resnet)"
        with pytest.raises(ModelNotFound, match=r"model 'inception' has no version 4 on .*\(versions served: 1\)"):
            client.predict("inception", {"images": [images["red.jpg"]]}, signature="predict_images", version=4)
        with pytest.raises(ModelNotFound, match="no version label 'canary'"):
            client.predict("inception", {"images": [images["red.jpg"]]}, signature="predict_images", label="canary")
        with pytest.raises(SignatureNotFound) as info:
            client.predict("inception", {"images": [images["red.jpg"]]}, signature="predict")
        assert (
            str(info.value)
            == "model 'inception' has no signature 'predict'; its signatures: predict_images, serving_default"
        )
        assert isinstance(info.value, KubeflowJupyterError)


def test_nothing_listening_says_how_to_start_a_server():
    unused_port = free_port()
    for rest in (False, True):
        with pytest.raises(ServerUnavailable) as info:
            classify_images([b"x"], server=f"127.0.0.1:{unused_port}", rest=rest, timeout=5)
        assert f"no model server answers at 127.0.0.1:{unused_port}" in str(info.value)
        assert "%model serve" in str(info.value) and "kubeflow-jupyter serve" in str(info.value)


def test_server_is_still_up_after_the_bad_requests(grpc_address, rest_address, images):
    assert classify_images(images["red.jpg"], server=grpc_address)[0][0][0]
    assert classify_images(images["red.jpg"], server=rest_address, rest=True)[0][0][0]
