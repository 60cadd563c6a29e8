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

from .display import IMAGE_FORMATS, UNKNOWN_IMAGE, image_mime
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


def load_images(images: Sequence[ImageSource], names: Sequence[str] | None = None) -> list[bytes]:
    """Every image's bytes, each checked here before anything is sent: a file that cannot be read
    or is not an encoded image is refused, naming each one (``names`` name bytes, e.g. uploads)."""
    loaded: list[bytes] = []
    problems: list[str] = []
    for i, image in enumerate(images):
        name = names[i] if names is not None else (f"image {i + 1}" if isinstance(image, bytes) else str(image))
        try:
            data = read_image(image)
        except ImageError as e:
            problems.append(str(e))
            continue
        if image_mime(data) == UNKNOWN_IMAGE:
            what = "an empty file" if not data else "not an image"
            problems.append(f"{name!r} is {what} (expected {IMAGE_FORMATS})")
        loaded.append(data)
    if len(problems) == 1:
        raise ImageError(f"{problems[0]}; nothing was sent")
    if problems:
        raise ImageError(f"{len(problems)} images refused, nothing was sent: " + "; ".join(problems))
    return loaded


def choose_model(client, where: str = "--model NAME") -> str:
    """The model to ask when the user named none: the server's only model when it says what it
    serves (``kubeflow-jupyter serve`` does), else the seed's ``inception``. Several served: a
    :class:`~kubeflow_jupyter.errors.UsageError` asking for ``where``."""
    served = client.served_models()
    if not served:
        return MODEL
    if len(served) == 1:
        return next(iter(served))
    from ..errors import UsageError

    names = ", ".join(repr(name) for name in sorted(served))
    raise UsageError(
        f"the model server at {client.server} serves {len(served)} models ({names}): choose one with {where}"
    )


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

    from .client import require_grpc

    require_grpc()
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
    model: str | None = MODEL,
    signature: str = SIGNATURE,
    version: int | None = None,
    label: str | None = None,
    rest: bool = False,
    timeout: float = 30.0,
    client=None,
) -> list[list[tuple[str, float]]]:
    """Top-5 ``(class, score)`` for each image (paths or bytes), in one request.

    The bytes go as given, like the seed's client (the server judges them); the front ends
    (``%model predict``, ModelQuery) check them first with :func:`load_images`.
    ``model=None``: the server's only model (:func:`choose_model`)."""
    from .client import PredictionClient

    if isinstance(images, (str, os.PathLike, bytes, bytearray)):
        images = [images]
    data = [read_image(i) for i in images]
    if not data:
        raise ImageError("no image given: pass at least one image path or bytes")
    own = client is None
    client = client or PredictionClient(server, rest=rest, timeout=timeout)
    try:
        model = model or choose_model(client)
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
