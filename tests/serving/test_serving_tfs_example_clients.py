"""The requests TF Serving's own example clients send, and the response fields they read.

TF Serving's ``tensorflow_serving/example`` clients are run against real TF
Serving; these tests send the same request shapes to the local server:

- ``mnist_client.py``: model ``mnist``, signature ``predict_images``, input
  ``images`` = ``tf.make_tensor_proto(image, shape=[1, 784])`` (float32, packed
  in ``tensor_content``), sent with ``Predict.future`` several at a time; reads
  ``outputs['scores'].float_val`` and takes its argmax.
- ``resnet_client_grpc.py``: model ``resnet``, signature ``serving_default``,
  input ``input_1`` = a float32 ``[1, H, W, 3]`` array; reads
  ``outputs['activation_49'].float_val``.
- ``resnet_client.py`` (REST): ``POST /v1/models/resnet:predict`` with the body
  ``{"instances": [[[[r, g, b], ...]]]}`` as plain data (no content type); reads
  ``response.json()['predictions'][0]`` and takes its argmax.

One tiny model with both signatures is served under both names.
"""

from __future__ import annotations

import http.client
import json

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow

MNIST_CLASSES = 10
RESNET_CLASSES = 1001


@pytest.fixture(scope="module")
def example_model_base(tmp_path_factory):
    """BASE/1 with ``predict_images`` (images [N,784] -> scores [N,10]) and
    ``serving_default`` (input_1 [N,H,W,3] -> activation_49 [N,1001])."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    digits_weights = tf.constant(rng.normal(size=(784, MNIST_CLASSES)).astype(np.float32))
    colour_weights = tf.constant(rng.normal(size=(3, RESNET_CLASSES)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float32, name="images")])
    def predict_images(images):
        return {"scores": tf.nn.softmax(images @ digits_weights)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="input_1")])
    def serving_default(input_1):
        return {"activation_49": tf.nn.softmax(tf.reduce_mean(input_1, axis=[1, 2]) @ colour_weights)}

    module = tf.Module()
    module.weights = [digits_weights, colour_weights]
    base = tmp_path_factory.mktemp("tfs-examples")
    tf.saved_model.save(
        module, str(base / "1"), signatures={"predict_images": predict_images, "serving_default": serving_default}
    )
    return base, digits_weights.numpy(), colour_weights.numpy()


@pytest.fixture(scope="module")
def servers(example_model_base):
    """The same export served as 'mnist' and as 'resnet', as the two clients name it."""
    from kubeflow_jupyter.serving.server import ModelServer

    base = example_model_base[0]
    started = {
        name: ModelServer(base, name, port=0, rest_port=0, announce=lambda m: None).start()
        for name in ("mnist", "resnet")
    }
    yield started
    for server in started.values():
        server.stop()


def test_mnist_client_requests_in_flight_together(servers, example_model_base):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    digits_weights = example_model_base[1]
    images = np.random.default_rng(1).random((12, 784)).astype(np.float32)
    with grpc.insecure_channel(f"127.0.0.1:{servers['mnist'].port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        pending = []
        for image in images:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "mnist"
            request.model_spec.signature_name = "predict_images"
            request.inputs["images"].CopyFrom(tf.make_tensor_proto(image, shape=[1, image.size]))
            assert request.inputs["images"].tensor_content  # what make_tensor_proto sends: packed bytes
            pending.append(stub.Predict.future(request, 5.0))
        predictions = []
        for call in pending:
            scores = call.result().outputs["scores"]
            assert list(scores.float_val) and len(scores.float_val) == MNIST_CLASSES
            predictions.append(int(np.argmax(np.array(scores.float_val))))
    assert predictions == list(np.argmax(images @ digits_weights, axis=1))


def test_resnet_grpc_client_request(servers, example_model_base):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    colour_weights = example_model_base[2]
    image = np.expand_dims(np.random.default_rng(2).random((24, 32, 3)), 0).astype(np.float32)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "resnet"
    request.model_spec.signature_name = "serving_default"
    request.inputs["input_1"].CopyFrom(tf.make_tensor_proto(image))
    with grpc.insecure_channel(f"127.0.0.1:{servers['resnet'].port}") as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, 10.0)
    probabilities = np.array(result.outputs["activation_49"].float_val)
    assert probabilities.shape == (RESNET_CLASSES,)
    assert np.argmax(probabilities) == np.argmax(image.mean(axis=(1, 2)) @ colour_weights)


def test_resnet_rest_client_request(servers, example_model_base):
    colour_weights = example_model_base[2]
    image = np.expand_dims(np.random.default_rng(3).random((20, 16, 3)), 0)  # float64, as the client's / 255.0 gives
    body = json.dumps({"instances": image.tolist()}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", servers["resnet"].rest_port, timeout=30)
    try:  # requests.post(url, data=str) sends the body with no Content-Type header
        connection.request("POST", "/v1/models/resnet:predict", body=body)
        response = connection.getresponse()
        assert response.status == 200
        prediction = json.loads(response.read())["predictions"][0]
    finally:
        connection.close()
    assert len(prediction) == RESNET_CLASSES
    assert np.argmax(prediction) == np.argmax(image.astype(np.float32).mean(axis=(1, 2)) @ colour_weights)
