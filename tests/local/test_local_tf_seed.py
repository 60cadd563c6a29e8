"""The seed's TFJob end to end with real TensorFlow: legacy YAML + --command through the CLI."""

from __future__ import annotations

import re

import numpy as np
import pytest
from local_helpers import leftover_processes
from support.cli import cli_subprocess

pytestmark = pytest.mark.tensorflow


def expected_matrix_text() -> str:
    """How the seed's master prints each product (numpy's int matrix layout), computed here."""
    values = np.arange(100, dtype=np.int32).reshape(10, 10)
    return str(values * values)


def test_seed_job_runs_locally_and_prints_the_four_results(isolated_home):
    submitted = cli_subprocess(
        "submit", "examples/tfjob-legacy.yaml", "--command", "python examples/tf_sample/tf_sample.py", "--wait"
    )
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert "notice: converted the seed's tensorflow.org/v1alpha1 TfJob" in submitted.stderr
    assert "example-job: Running" in submitted.stderr
    assert "tfjob 'example-job' Succeeded" in submitted.stdout

    logs = cli_subprocess("logs", "example-job", "--replica", "master-0")
    assert logs.returncode == 0, logs.stderr
    results = re.findall(r"INFO:root:Result: (\[\[.*?\]\])\n", logs.stdout, flags=re.S)
    assert results == [expected_matrix_text()] * 4
    # One multiply was placed on each of the four tasks, as in the seed's log.
    for device in (
        "/job:master/replica:0/task:0",
        "/job:ps/replica:0/task:0",
        "/job:ps/replica:0/task:1",
        "/job:worker/replica:0/task:0",
    ):
        assert re.search(rf"Mul(_\d)?: \(Mul\): {re.escape(device)}", logs.stdout), device

    got = cli_subprocess("get", "example-job")
    assert re.search(r"master-0\s+Succeeded\s+0\s+0", got.stdout)
    for rid in ("ps-0", "ps-1", "worker-0"):
        assert re.search(rf"{rid}\s+Stopped", got.stdout)
    assert leftover_processes(isolated_home) == []
