"""Distributed training of a small digit classifier with ParameterServerStrategy, for a
``%%tfjob run --chief --workers 1 --ps 1 --files run_helpers`` cell.

Every replica runs the same cell: ``serve_unless_chief()`` turns the ps and worker replicas
into ``tf.distribute.Server``\\ s that serve until the job ends (the operator stops them once
the chief succeeds); the chief gets past it, trains with a ``ClusterCoordinator`` scheduling
each step on the workers, evaluates on held-out digits and saves the model.
The data is scikit-learn's bundled digits (no download).
"""

from __future__ import annotations

import json
import os

HELD_OUT = 297


def role() -> str:
    return json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {}).get("type", "")


def serve_unless_chief() -> None:
    """On a ps or worker replica: serve the chief until the job ends (never returns)."""
    if role() not in ("ps", "worker"):
        return
    import tensorflow as tf

    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(
        resolver.cluster_spec(), job_name=resolver.task_type, task_index=resolver.task_id, protocol="grpc", start=True
    )
    server.join()


def load_digits():
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype("float32")[..., None], digits.target.astype(np.int64)


def build_model():
    import keras

    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def train_and_evaluate(steps: int = 150, batch_size: int = 64, model_path: str | None = None) -> float:
    """Train on the cluster (or in this process without TF_CONFIG); returns the test accuracy
    and saves the model to ``model_path`` (a ``.keras`` file) when given."""
    import keras
    import numpy as np
    import tensorflow as tf

    images, labels = load_digits()
    train_x, train_y = images[:-HELD_OUT], labels[:-HELD_OUT]
    if role():
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        strategy = tf.distribute.ParameterServerStrategy(resolver)
        coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
    else:
        strategy, coordinator = tf.distribute.get_strategy(), None
    with strategy.scope():
        model = build_model()
        optimizer = keras.optimizers.Adam(0.01)

    def dataset_fn(_=None):
        data = tf.data.Dataset.from_tensor_slices((train_x, train_y))
        return data.shuffle(len(train_y), seed=0).repeat().batch(batch_size)

    @tf.function
    def step(iterator):
        def replica_step(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x, training=True)))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        x, y = next(iterator)
        return strategy.run(replica_step, args=(x, y))

    if coordinator is None:
        iterator = iter(dataset_fn())
        for _ in range(steps):
            step(iterator)
    else:
        iterator = iter(coordinator.create_per_worker_dataset(dataset_fn))
        for _ in range(steps):
            coordinator.schedule(step, args=(iterator,))
        coordinator.join()
    trained = build_model()  # the weights, out of the parameter servers into this process
    trained.set_weights([np.asarray(w) for w in model.get_weights()])
    logits = trained(images[-HELD_OUT:], training=False)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == labels[-HELD_OUT:]))
    if model_path:
        os.makedirs(os.path.dirname(os.path.abspath(model_path)), exist_ok=True)
        trained.save(model_path)
    return accuracy
