"""Small kubeflow.org/v1 TFJob manifests whose replicas run a Python one-liner (no TensorFlow: fast).

Every replica type is given as ``(count, restartPolicy, code)``; its container runs
``python -c CODE``, which works on the local backend, the fake API server and a real cluster alike.
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml

IMAGE = "python:3.11-slim"
HELLO = "print('hello from the worker')"
PRINT_TF_CONFIG = "import os; print('TF_CONFIG', os.environ.get('TF_CONFIG', '')); print('done')"

ReplicaSpec = tuple[int, str, str]  # (count, restartPolicy, Python code)


def tfjob_manifest(
    name: str, replicas: Mapping[str, ReplicaSpec] | None = None, *, run_policy: dict | None = None
) -> dict:
    """The TFJob as a dict; ``replicas`` is ``{type: (count, restartPolicy, code)}``, in spec order.

    Without ``replicas``: one Worker, restartPolicy Never, printing :data:`HELLO`.
    """
    if replicas is None:
        replicas = {"Worker": (1, "Never", HELLO)}
    specs = {
        rtype: {
            "replicas": count,
            "restartPolicy": policy,
            "template": {
                "spec": {"containers": [{"name": "tensorflow", "image": IMAGE, "command": ["python", "-c", code]}]}
            },
        }
        for rtype, (count, policy, code) in replicas.items()
    }
    spec: dict = {"tfReplicaSpecs": specs}
    if run_policy:
        spec["runPolicy"] = run_policy
    return {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": name}, "spec": spec}


def tfjob_yaml(name: str, replicas: Mapping[str, ReplicaSpec] | None = None, *, run_policy: dict | None = None) -> str:
    """:func:`tfjob_manifest` as the YAML a user writes: keys in manifest order, long lines not folded,
    the container's keys indented 12 spaces (a test may append more container fields at that depth)."""
    manifest = tfjob_manifest(name, replicas, run_policy=run_policy)
    return yaml.safe_dump(manifest, sort_keys=False, width=2**31)
