"""Train a small digit classifier across a TFJob's replicas and export it for serving.

The data is scikit-learn's bundled digits (8x8 grey images, 10 classes: no
download). With ``TF_CONFIG`` naming a chief, workers and parameter servers (the
operator, or the local backend, injects it):

- ``ps`` and ``worker`` replicas start a ``tf.distribute.Server`` and serve until
  the job ends (they never exit on their own);
- the ``chief`` trains with ``ParameterServerStrategy``: the variables live on
  the parameter servers, a ``ClusterCoordinator`` schedules each training step
  on the workers (Keras 3's ``fit`` has no parameter-server support, hence the
  custom loop), then it evaluates on held-out digits and exports a SavedModel
  to ``--export-dir/<version>`` with the seed's image signature
  (``predict_images``: PNG/JPEG bytes -> top-5 classes and scores).

Without ``TF_CONFIG`` it trains in this process. Serve the export with
``kubeflow-jupyter serve EXPORT_DIR --model-name digits``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os

import numpy as np
import tensorflow as tf

from kubeflow_jupyter import report  # prints `step=N loss=…`: %tfjob metrics and the monitor's charts read it

SERVER_ROLES = ("ps", "worker")
#: Steps between two loss records: the chief waits for the workers at each (a live curve, little slowdown).
REPORT_EVERY = 5
CLASS_NAMES = [str(d) for d in range(10)]
HELD_OUT = 297  # the last digits are kept for the test accuracy


def load_data() -> tuple[np.ndarray, np.ndarray]:
    """Images as [N, 8, 8, 1] floats in [0, 1] (what the serving signature's decoder yields), labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype("float32")[..., None], digits.target.astype("int64")


def build_model():
    import keras

    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(len(CLASS_NAMES)),  # logits: the served scores, like the seed's Inception
        ]
    )


def train(strategy, coordinator, images, labels, steps: int, batch_size: int, learning_rate: float):
    """A custom loop: each step runs on a worker (ClusterCoordinator) or in-process (no coordinator)."""
    import keras

    with strategy.scope():
        model = build_model()
        optimizer = keras.optimizers.Adam(learning_rate)

    def dataset_fn(_=None):
        data = tf.data.Dataset.from_tensor_slices((images, labels))
        return data.shuffle(len(labels), seed=0).repeat().batch(batch_size)

    @tf.function
    def step(iterator):
        def replica_step(x, y):
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        x, y = next(iterator)
        return strategy.run(replica_step, args=(x, y))

    if coordinator is None:
        iterator = iter(strategy.experimental_distribute_dataset(dataset_fn()))
        for i in range(steps):
            loss = step(iterator)
            if i % REPORT_EVERY == 0 or i == steps - 1:
                report(i, loss=float(loss))
        return model
    iterator = iter(coordinator.create_per_worker_dataset(dataset_fn))
    for start in range(0, steps, REPORT_EVERY):
        losses = [coordinator.schedule(step, args=(iterator,)) for _ in range(start, min(start + REPORT_EVERY, steps))]
        coordinator.join()
        report(start + len(losses) - 1, loss=float(losses[-1].fetch()))  # computed on a worker
    return model


def local_copy(model):
    """The trained weights in a model of this process: what is evaluated and exported."""
    copy = build_model()
    copy.set_weights([np.asarray(w) for w in model.get_weights()])
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--export-dir", default="models/digits", help="model base path: the export goes to EXPORT_DIR/<version>"
    )
    parser.add_argument(
        "--version", type=int, default=None, help="version number (default: one more than the highest there)"
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s")

    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    role = tf_config.get("task", {}).get("type", "")
    if role in SERVER_ROLES:
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        server = tf.distribute.Server(
            resolver.cluster_spec(), job_name=role, task_index=resolver.task_id, protocol="grpc", start=True
        )
        logging.info("%s %d serving at %s", role, resolver.task_id, server.target)
        server.join()
        return

    images, labels = load_data()
    train_x, train_y = images[:-HELD_OUT], labels[:-HELD_OUT]
    if role:  # chief (or master): coordinate the workers and parameter servers
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        strategy = tf.distribute.ParameterServerStrategy(resolver)
        coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
        cluster = resolver.cluster_spec().as_dict()
        logging.info("training across %s", ", ".join(f"{len(v)} {k}" for k, v in sorted(cluster.items())))
    else:
        strategy, coordinator = tf.distribute.get_strategy(), None
        logging.info("no TF_CONFIG: training in this process")
    model = local_copy(train(strategy, coordinator, train_x, train_y, args.steps, args.batch_size, args.learning_rate))

    logits = model(images[-HELD_OUT:], training=False)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == labels[-HELD_OUT:]))
    logging.info("test accuracy %.3f on %d held-out digits", accuracy, HELD_OUT)

    from kubeflow_jupyter.serving.export import export_image_classifier

    path = export_image_classifier(model, args.export_dir, CLASS_NAMES, version=args.version, channels=1)
    logging.info("exported SavedModel to %s", path)


if __name__ == "__main__":
    main()
