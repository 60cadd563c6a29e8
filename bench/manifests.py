"""The TFJob the benchmarks submit: one Worker, restartPolicy Never, running a Python one-liner
(no TensorFlow: what is measured is the machinery, not training). Benchmarks run as scripts, so
this folder is on their import path."""

from __future__ import annotations


def one_worker_job(name: str, code: str, image: str = "python:3.11-slim") -> dict:
    container = {"name": "tensorflow", "image": image, "command": ["python", "-c", code]}
    worker = {"replicas": 1, "restartPolicy": "Never", "template": {"spec": {"containers": [container]}}}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name},
        "spec": {"tfReplicaSpecs": {"Worker": worker}},
    }
