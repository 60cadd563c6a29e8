"""Export a Keras image classifier with the seed's Inception serving signatures.

- ``predict_images``: ``images`` = DT_STRING [N] of encoded image bytes (JPEG, PNG,
  GIF, BMP) -> ``classes`` DT_STRING [N, k] (class names, best first) and
  ``scores`` DT_FLOAT [N, k] (the model's raw outputs for those classes: logits
  for a model without a softmax, as the seed's Inception export returned).
- ``serving_default``: a TF2 classify signature, ``inputs`` = serialized
  ``tf.Example`` [N] with the image bytes under ``image/encoded`` -> ``classes``
  and ``scores``: what TF Serving's Classify API and ``:classify`` run.

The SavedModel is written to a temporary directory and renamed into
``BASE/<version>`` so that a server polling BASE never sees half an export.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

PREDICT_SIGNATURE = "predict_images"
IMAGE_FEATURE = "image/encoded"


def next_version(base_path: str | os.PathLike) -> int:
    """One more than the highest integer version directory under ``base_path`` (1 when none)."""
    base = Path(base_path)
    numbers = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()] if base.is_dir() else []
    return max(numbers, default=0) + 1


def export_image_classifier(
    model,
    base_path: str | os.PathLike,
    class_names: Sequence[str],
    *,
    version: int | None = None,
    channels: int = 3,
    preprocess: Callable | None = None,
    top_k: int = 5,
) -> Path:
    """Write ``model`` (Keras, images [N,H,W,C] -> [N, len(class_names)]) as ``base_path/<version>``.

    ``preprocess`` maps float32 pixels in [0, 1], already resized to the model's
    input size, to what the model expects (default: unchanged).
    """
    from ..extras import require

    tf = require("tensorflow", feature="export_image_classifier")

    height, width = model.input_shape[1:3]
    if len(class_names) != model.output_shape[-1]:
        raise ValueError(f"{len(class_names)} class names for a model with {model.output_shape[-1]} outputs")
    k = min(top_k, len(class_names))
    names = tf.constant(list(class_names))

    def decode(image_bytes):
        image = tf.io.decode_image(image_bytes, channels=channels, expand_animations=False)
        image = tf.image.convert_image_dtype(image, tf.float32)  # [0, 1]
        return tf.image.resize(image, (height, width))

    class ImageClassifier(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            # Keras 3 wraps each tf.Variable; tracking the wrapped ones too makes the SavedModel's
            # restore op fill the very variables the signatures read, which is what TF Serving (and
            # any TF1-style loader) runs. Without it TF Serving answers "Could not find variable".
            self.tf_variables = [w if isinstance(w, tf.Variable) else w.value for w in model.weights]

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
        def predict_images(self, images):
            pixels = tf.map_fn(decode, images, fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32))
            if preprocess is not None:
                pixels = preprocess(pixels)
            outputs = self.model(pixels, training=False)
            scores, indices = tf.math.top_k(outputs, k=k)
            return {"classes": tf.gather(names, indices), "scores": scores}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify(self, inputs):
            features = tf.io.parse_example(inputs, {IMAGE_FEATURE: tf.io.FixedLenFeature([], tf.string)})
            return self.predict_images(features[IMAGE_FEATURE])

    base = Path(base_path)
    base.mkdir(parents=True, exist_ok=True)
    version = next_version(base) if version is None else version
    target = base / str(version)
    if target.exists():
        raise FileExistsError(f"{target} already exists: choose another --version or remove it")
    module = ImageClassifier()
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=base))  # hidden, not an integer: pollers skip it
    try:
        tf.saved_model.save(
            module,
            str(staging),
            signatures={
                PREDICT_SIGNATURE: module.predict_images,
                "serving_default": module.classify,
            },
        )
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
