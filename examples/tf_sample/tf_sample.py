"""The seed's TFJob program (tf_sample), for TensorFlow 2.

Each replica reads ``TF_CONFIG`` (the operator, or the local runner, injects it)
and starts a gRPC ``tf.distribute.Server`` for its task:

- ``ps`` and ``worker`` serve: they block in ``server.join()`` so that the master
  can place ops on them. They never exit on their own: on a cluster the
  operator's default cleanPodPolicy (None) leaves them running, the local
  runner stops them once the job has finished.
- ``master`` (or ``chief``) builds one multiply per task of the cluster, each
  pinned to that task with ``tf.device``, runs them in a graph-mode session on
  its own server and logs every product: ``INFO:root:Result: [[ 0 1 4 ...``.

Without ``TF_CONFIG`` (a single-replica job, or ``python tf_sample.py``) it runs
the multiply in-process.
"""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

WIDTH = HEIGHT = 10
SERVING_ROLES = ("ps", "worker")
COORDINATOR_ROLES = ("master", "chief", "")


def build_products(devices: list[str | None]) -> list[tf.Tensor]:
    """One element-wise square of ``0..99`` (as a 10x10 int matrix) per device."""
    products = []
    for device in devices:
        with tf.device(device):
            a = tf.constant(list(range(WIDTH * HEIGHT)), shape=[HEIGHT, WIDTH])
            b = tf.constant(list(range(WIDTH * HEIGHT)), shape=[HEIGHT, WIDTH])
            products.append(tf.multiply(a, b))
    return products


def task_devices(cluster_spec: dict[str, list[str]]) -> list[str | None]:
    """``/job:<name>/task:<i>`` for every task of the cluster; no cluster: the local default device."""
    devices: list[str | None] = [
        f"/job:{job_name}/task:{index}" for job_name in cluster_spec for index in range(len(cluster_spec[job_name]))
    ]
    return devices or [None]


def run_master(target: str, cluster_spec: dict[str, list[str]]) -> None:
    with tf.Graph().as_default():
        products = build_products(task_devices(cluster_spec))
        logging.info("Server target: %s", target or "(in-process)")
        config = tf.compat.v1.ConfigProto(log_device_placement=True)
        with tf.compat.v1.Session(target, config=config) as session:
            for product in products:
                logging.info("Result: %s", session.run(product))


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    tf.compat.v1.disable_eager_execution()
    logging.info("Tensorflow version: %s", tf.version.VERSION)
    logging.info("Tensorflow git version: %s", tf.version.GIT_VERSION)

    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    logging.info("tf_config: %s", tf_config)
    task = tf_config.get("task", {})
    logging.info("task: %s", task)
    cluster_spec = tf_config.get("cluster", {})
    # The operator lists every replica type, also those with 0 replicas: drop empty jobs.
    cluster_spec = {job: hosts for job, hosts in cluster_spec.items() if hosts}
    logging.info("cluster_spec: %s", cluster_spec)

    role = str(task.get("type", "")).lower()
    if role not in SERVING_ROLES + COORDINATOR_ROLES:
        raise ValueError(f"invalid task type {role!r} in TF_CONFIG (expected one of ps, worker, master, chief)")

    target = ""
    if cluster_spec:
        server_def = tf.train.ServerDef(
            cluster=tf.train.ClusterSpec(cluster_spec).as_cluster_def(),
            protocol="grpc",
            job_name=role,
            task_index=int(task.get("index", 0)),
        )
        logging.info("server_def: %s", server_def)
        logging.info("Building server.")
        server = tf.distribute.Server(server_def)
        logging.info("Finished building server.")
        target = server.target
        if role in SERVING_ROLES:
            logging.info("Running %s: serving ops placed here by the master.", role)
            server.join()
            return

    logging.info("Running master.")
    run_master(target, cluster_spec)


if __name__ == "__main__":
    main()
