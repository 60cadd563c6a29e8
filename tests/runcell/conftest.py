"""Run a payload's real bootstrap as a replica would: a subprocess in its own working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest


@dataclass
class Replica:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines(keepends=True)


def tf_config(task_type: str, index: int, cluster: dict[str, int]) -> str:
    """TF_CONFIG as the operator sets it, for a cluster of ``{type: count}``."""
    hosts = {kind: [f"job-{kind}-{i}:2222" for i in range(count)] for kind, count in cluster.items()}
    return json.dumps({"cluster": hosts, "task": {"type": task_type, "index": index}, "environment": "cloud"})


@pytest.fixture
def run_replica(tmp_path):
    """``run_replica(payload, tf_config=None, python=sys.executable, **argv_options)`` → Replica."""
    counter = iter(range(1000))

    def run(payload, tf_config: str | None = None, python: str = sys.executable, directory=None, **argv_options):
        workdir = directory or payload.write_to(tmp_path / f"replica-{next(counter)}")
        env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "PYTHONPATH")}
        if tf_config is not None:
            env["TF_CONFIG"] = tf_config
        done = subprocess.run(
            payload.argv(python, **argv_options), cwd=workdir, env=env, capture_output=True, text=True, timeout=120
        )
        return Replica(done.returncode, done.stdout, done.stderr)

    return run
