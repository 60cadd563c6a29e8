"""Helpers for the lab tests (import them from here: several test folders have a conftest.py)."""

from __future__ import annotations

import json
import textwrap


def tfjob_yaml(name: str, command: list[str], replicas: int = 1) -> str:
    """A tiny kubeflow.org/v1 TFJob whose workers run a Python one-liner (no TensorFlow: fast)."""
    return textwrap.dedent(f"""\
        apiVersion: kubeflow.org/v1
        kind: TFJob
        metadata:
          name: {name}
        spec:
          tfReplicaSpecs:
            Worker:
              replicas: {replicas}
              restartPolicy: Never
              template:
                spec:
                  containers:
                  - name: tensorflow
                    image: python:3.11-slim
                    command: {json.dumps(command)}
        """)


HELLO = ["python", "-c", "print('hello from the worker')"]
