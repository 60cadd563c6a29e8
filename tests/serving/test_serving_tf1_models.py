"""A TF1-style SavedModel (graph, placeholders, classify/regress method names), like TF Serving's half_plus_two.

The model is built here with ``tf.compat.v1``'s SavedModelBuilder: y = x / 2 + 2, a
predict signature on a ``[-1, 1]`` placeholder, and classify / regress signatures on
serialized tf.Examples. TF Serving's documented REST answers are the reference.
"""

from __future__ import annotations

import json
import urllib.request

import grpc
import pytest
from tensorflow_serving.apis import prediction_service_pb2_grpc, regression_pb2

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def half_plus_two(tmp_path_factory):
    import tensorflow as tf

    v1 = tf.compat.v1
    base = tmp_path_factory.mktemp("half_plus_two")
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        serialized = v1.placeholder(tf.string, name="tf_example")
        parsed = v1.io.parse_example(serialized, {"x": v1.io.FixedLenFeature([1], tf.float32)})
        a = v1.Variable(0.5, name="a")
        b = v1.Variable(2.0, name="b")
        x = v1.placeholder(tf.float32, shape=[None, 1], name="x")
        y = tf.add(a * x, b, name="y")
        y_from_example = tf.add(a * parsed["x"], b)
        session.run(v1.global_variables_initializer())
        signatures = v1.saved_model.signature_def_utils
        builder = v1.saved_model.Builder(str(base / "00000123"))
        builder.add_meta_graph_and_variables(
            session,
            ["serve"],
            signature_def_map={
                "serving_default": signatures.predict_signature_def({"x": x}, {"y": y}),
                "classify_x_to_y": signatures.classification_signature_def(serialized, None, y_from_example),
                "regress_x_to_y": signatures.regression_signature_def(serialized, y_from_example),
            },
        )
        builder.save()
    from kubeflow_jupyter.serving.server import ModelServer

    server = ModelServer(base, "half_plus_two", port=0, rest_port=0, announce=lambda m: None).start()
    yield server
    server.stop()


def _post(server, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.rest_port}{path}", data=json.dumps(body).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_documented_curl_examples(half_plus_two):
    # TF Serving's REST docs: -d '{"instances": [1.0, 2.0, 5.0]}' -> {"predictions": [2.5, 3.0, 4.5]}
    assert _post(half_plus_two, "/v1/models/half_plus_two:predict", {"instances": [1.0, 2.0, 5.0]}) == (
        200,
        {"predictions": [2.5, 3.0, 4.5]},
    )
    assert _post(half_plus_two, "/v1/models/half_plus_two/versions/123:predict", {"inputs": [[1.0], [3.0]]}) == (
        200,
        {"outputs": [[2.5], [3.5]]},
    )
    assert _post(
        half_plus_two,
        "/v1/models/half_plus_two:regress",
        {"signature_name": "regress_x_to_y", "examples": [{"x": 1.0}, {"x": 4.0}]},
    ) == (200, {"results": [2.5, 4.0]})
    status, body = _post(
        half_plus_two,
        "/v1/models/half_plus_two:classify",
        {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]},
    )
    assert (status, body) == (200, {"results": [[["", 3.0]]]})


def test_grpc_regress_and_the_wrong_type(half_plus_two):
    from kubeflow_jupyter.serving.client import PredictionClient
    from kubeflow_jupyter.serving.errors import InvalidRequest

    with grpc.insecure_channel(f"127.0.0.1:{half_plus_two.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = regression_pb2.RegressionRequest()
        request.model_spec.name, request.model_spec.signature_name = "half_plus_two", "regress_x_to_y"
        for value in (2.0, 6.0):
            request.input.example_list.examples.add().features.feature["x"].float_list.value.append(value)
        response = stub.Regress(request, timeout=30)
    assert [r.value for r in response.result.regressions] == [3.0, 5.0]
    assert response.model_spec.version.value == 123
    with PredictionClient(f"127.0.0.1:{half_plus_two.port}") as client:
        assert client.predict("half_plus_two", {"x": [[4.0]]})["y"].tolist() == [[4.0]]  # Python floats: DT_FLOAT
        with pytest.raises(InvalidRequest, match="to be float but int32 is provided"):
            client.predict("half_plus_two", {"x": [[4]]})


def test_json_values_must_fit_the_tensor_type(half_plus_two):
    for instances, reason in (
        ([True], "True is not of expected type: float"),
        (["1.0"], "'1.0' is not of expected type: float"),
        ([[1.0], [2.0, 3.0]], "is not a dense list"),
    ):
        status, body = _post(half_plus_two, "/v1/models/half_plus_two:predict", {"instances": instances})
        assert status == 400 and reason in body["error"], body
    assert _post(half_plus_two, "/v1/models/half_plus_two:predict", {"instances": [1, 3]}) == (
        200,
        {"predictions": [2.5, 3.5]},
    )  # JSON integers are numbers: fine for a float tensor
