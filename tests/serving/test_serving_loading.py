"""How versions are loaded: TF Serving's way (a session over the serve graph, the saver's restore op), and the fallback.

TF Serving loads a SavedModel with its C++ loader: import the ``serve`` meta graph,
run the saver's restore op, run the main op, then feed and fetch the signatures'
tensors by name. An export that only TF2's object loader can restore (a Keras 3
model inside a ``tf.Module``, its variables not tracked) loads there but fails every
request with "Could not find variable". These tests check that the bundled exporter's
output passes TF Serving's steps, and that the server still serves such a broken
export while saying why real TF Serving would not.
"""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow_serving.apis import model_pb2

pytestmark = pytest.mark.tensorflow


def _keras_export(base, *, track_variables: bool):
    """A Keras 3 model in a tf.Module, saved as the web's examples do; optionally with the exporter's fix."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])

    class Wrapper(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            if track_variables:  # the fix: the tf.Variables Keras 3 wraps, tracked by the module too
                self.tf_variables = [w.value for w in model.weights]

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            return {"y": self.model(x, training=False)}

    wrapper = Wrapper()
    tf.saved_model.save(wrapper, str(base / "1"), signatures={"serving_default": wrapper.serve})
    return model


def test_the_bundled_export_passes_tf_servings_loading_steps(server, images):
    from kubeflow_jupyter.serving.loading import SessionBundle

    version = server.core.resolve(model_pb2.ModelSpec(name="inception"))
    assert version.bundle is not None and not version.functions  # served the TF Serving way
    # The same steps from scratch on the directory: restore op + signatures by tensor name.
    bundle = SessionBundle.load(version.path)
    signature = version.signature_defs["predict_images"]
    outputs = bundle.run("predict_images", signature, {"images": np.array([images["red.jpg"]], dtype=object)})
    assert outputs["classes"].shape == (1, 5) and outputs["scores"].dtype == np.float32
    assert not any(m for m in server.messages if "TF Serving would" in m)


def test_an_export_tf_serving_could_not_restore_is_served_and_explained(tmp_path):
    from kubeflow_jupyter.serving.loading import SessionBundle, UnrestoredVariables
    from kubeflow_jupyter.serving.server import ModelServer

    model = _keras_export(tmp_path, track_variables=False)
    with pytest.raises(UnrestoredVariables, match="Could not find variable"):
        SessionBundle.load(tmp_path / "1")

    messages: list[str] = []
    server = ModelServer(tmp_path, "plain", port=0, rest_port=None, announce=messages.append).start()
    try:
        warning = next(m for m in messages if "TF Serving would" in m)
        assert "version 1" in warning and "tracked" in warning and "object loader" in warning
        version = server.core.resolve(model_pb2.ModelSpec(name="plain"))
        assert version.bundle is None and version.state == "AVAILABLE"
        x = np.arange(8, dtype=np.float32).reshape(2, 4)
        from kubeflow_jupyter.serving.client import PredictionClient

        with PredictionClient(f"127.0.0.1:{server.port}") as client:
            y = client.predict("plain", {"x": x})["y"]
        np.testing.assert_allclose(y, model(x).numpy(), rtol=1e-5)
    finally:
        server.stop()


def test_a_tracked_export_of_the_same_model_is_served_the_tf_serving_way(tmp_path):
    """The fix the exporter applies: the module also tracks the tf.Variables Keras 3 wraps."""
    from kubeflow_jupyter.serving.loading import SessionBundle, read_signature_defs

    model = _keras_export(tmp_path, track_variables=True)
    bundle = SessionBundle.load(tmp_path / "1")
    signature = read_signature_defs(tmp_path / "1")["serving_default"]
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(bundle.run("serving_default", signature, {"x": x})["y"], model(x).numpy(), rtol=1e-5)
