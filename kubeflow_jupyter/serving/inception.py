"""Classify images the way the seed's ``inception_client`` did.

The request is exactly the seed's: ``model_spec.name = "inception"``,
``signature_name = "predict_images"``, input ``images`` = a DT_STRING tensor of
the raw encoded image bytes, shape [N] (all images in one request). The
response's ``classes`` [N, 5] and ``scores`` [N, 5] become one top-5 list of
``(class, score)`` per image. Any model exported with the same signature (the
digits example, :func:`kubeflow_jupyter.serving.export.export_image_classifier`)
answers the same request.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .errors import ImageError

MODEL = "inception"
SIGNATURE = "predict_images"
INPUT = "images"

ImageSource = str | os.PathLike | bytes


def read_image(image: ImageSource) -> bytes:
    """Bytes as given; a path is read (one clear error when it cannot be)."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    path = Path(image).expanduser()
    try:
        return path.read_bytes()
    except OSError as e:
        raise ImageError(f"cannot read image {str(path)!r}: {e.strerror or e}") from None


def predict_request(
    images: Sequence[bytes],
    *,
    model: str = MODEL,
    signature: str = SIGNATURE,
    version: int | None = None,
    label: str | None = None,
):
    """The seed's PredictRequest for a batch of encoded images, as a message (for raw gRPC callers and tests)."""
    import numpy as np
    from tensorflow_serving.apis import predict_pb2

    from .tensors import to_tensor_proto

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    elif label:
        request.model_spec.version_label = label
    request.inputs[INPUT].CopyFrom(to_tensor_proto(np.array(list(images), dtype=object).reshape(len(images))))
    return request


def top_k(classes, scores) -> list[list[tuple[str, float]]]:
    """``classes`` [N, k] (bytes) and ``scores`` [N, k] -> one [(class, score), ...] per image."""
    return [
        [
            (c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c), float(s))
            for c, s in zip(row_c, row_s, strict=False)
        ]
        for row_c, row_s in zip(classes, scores, strict=False)
    ]


def classify_images(
    images: Sequence[ImageSource] | ImageSource,
    *,
    server: str | None = None,
    model: str = MODEL,
    signature: str = SIGNATURE,
    version: int | None = None,
    label: str | None = None,
    rest: bool = False,
    timeout: float = 30.0,
    client=None,
) -> list[list[tuple[str, float]]]:
    """Top-5 ``(class, score)`` for each image (paths or bytes), in one request."""
    from .client import PredictionClient

    if isinstance(images, (str, os.PathLike, bytes, bytearray)):
        images = [images]
    data = [read_image(i) for i in images]
    if not data:
        raise ImageError("no image given: pass at least one image path or bytes")
    own = client is None
    client = client or PredictionClient(server, rest=rest, timeout=timeout)
    try:
        # The bytes go as one DT_STRING tensor of shape [N] over either transport: the seed's request.
        outputs = client.predict(model, {INPUT: data}, signature=signature, version=version, label=label)
    finally:
        if own:
            client.close()
    missing = {"classes", "scores"} - set(outputs)
    if missing:
        from .errors import InvalidRequest

        raise InvalidRequest(
            f"model {model!r} signature {signature!r} returned no {', '.join(sorted(missing))}: "
            "it is not an image classifier with the seed's outputs (classes, scores)"
        )
    return top_k(outputs["classes"], outputs["scores"])
