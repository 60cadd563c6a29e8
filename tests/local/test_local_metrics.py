"""Live training metrics on the local backend: every replica's $TFJOB_LOGDIR (the job's own
directory in the store), ``client.metrics`` merging ``report()`` log lines with ``tf.summary``
scalars, and ``client.tensorboard`` serving them, stopped with the job's delete."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from local_helpers import leftover_processes

from kubeflow_jupyter.client import TFJobClient
from kubeflow_jupyter.errors import OptionError, SpecError
from kubeflow_jupyter.handle import TFJobHandle
from kubeflow_jupyter.tfjob.model import ANNOTATION_LOGDIR

STEPS = 12

TRAIN = f"""
import json, os
from kubeflow_jupyter import report

task = json.loads(os.environ["TF_CONFIG"])["task"]
logdir = os.environ["TFJOB_LOGDIR"]
print("logdir", logdir, flush=True)
if task["type"] == "chief":
    import tensorflow as tf

    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        for step in range({STEPS}):
            report(step, loss=1.0 / (step + 1), accuracy=step / 100)
            tf.summary.scalar("val_loss", 2.0 / (step + 1), step=step)
    writer.close()
"""


def job(name: str, script: Path, annotations: dict | None = None) -> dict:
    container = {"name": "tensorflow", "image": "unused", "command": [sys.executable, str(script)]}
    replica = {"replicas": 1, "restartPolicy": "Never", "template": {"spec": {"containers": [container]}}}
    metadata: dict = {"name": name, **({"annotations": annotations} if annotations else {})}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": metadata,
        "spec": {"tfReplicaSpecs": {"Chief": replica, "Worker": dict(replica)}},
    }


def logged_logdir(client: TFJobClient, name: str, replica: str) -> str:
    return next(line.split(" ", 1)[1] for line in client.logs(name, replica) if line.startswith("logdir "))


def tags_at(url: str, timeout: float = 60.0) -> dict:
    """TensorBoard's scalar tags by run, once it has loaded some (it reads the logdir every 2 s)."""
    deadline = time.monotonic() + timeout
    tags: dict = {}
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url + "data/plugin/scalars/tags", timeout=10) as response:
            tags = json.load(response)
        if tags:
            return tags
        time.sleep(0.5)
    return tags


@pytest.mark.tensorflow
def test_metrics_hold_every_step_of_both_sources_and_tensorboard_serves_them(tmp_path, isolated_home):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    client = TFJobClient("local")
    client.submit(job("curves", script))
    final = client.wait("curves", timeout=240)
    assert final.state == "Succeeded"

    logdir = client.logdir("curves")
    assert logdir == str(isolated_home / "namespaces" / "default" / "curves" / "logdir")
    assert logged_logdir(client, "curves", "chief-0") == logdir == logged_logdir(client, "curves", "worker-0")

    df = TFJobHandle(client, "curves").metrics()
    assert list(df.columns) == ["replica", "step", "loss", "accuracy", "val_loss"]
    assert list(df["replica"]) == ["chief-0"] * STEPS and list(df["step"]) == list(range(STEPS))
    assert list(df["loss"]) == [1.0 / (s + 1) for s in range(STEPS)]
    assert list(df["accuracy"]) == [s / 100 for s in range(STEPS)]
    assert df["val_loss"].tolist() == pytest.approx([2.0 / (s + 1) for s in range(STEPS)], rel=1e-6)  # float32
    everyone = client.metrics("curves", "all")
    assert set(everyone["replica"]) == {"chief-0"}  # the worker logged no record

    board = client.tensorboard("curves")
    try:
        assert board.url.startswith("http://127.0.0.1:") and board.logdir == str(Path(logdir).resolve())
        assert client.tensorboard("curves") is board  # once per job
        tags = tags_at(board.url)
        assert "val_loss" in tags.get(".", {}), tags
        assert not board.proxied and f'src="{board.url}"' in board._repr_html_()  # no Jupyter server here
    finally:
        client.delete("curves")
    assert not board.alive  # stopped with the job's delete
    assert leftover_processes(isolated_home) == []
    assert not Path(logdir).exists()


def test_every_replica_gets_the_jobs_own_logdir_even_with_a_cluster_logdir(tmp_path, isolated_home):
    script = tmp_path / "show.py"
    script.write_text("import os\nprint('logdir', os.environ['TFJOB_LOGDIR'], flush=True)\n")
    client = TFJobClient("local")
    sub = client.submit(job("plain", script), logdir="pvc://claim/runs/plain")
    assert any("logdir pvc://claim/runs/plain is for a cluster" in n for n in sub.notices), sub.notices
    assert sub.manifest["metadata"]["annotations"][ANNOTATION_LOGDIR] == "pvc://claim/runs/plain"
    assert client.wait("plain", timeout=60).state == "Succeeded"
    logdir = client.logdir("plain")
    assert Path(logdir).is_dir() and logged_logdir(client, "plain", "chief-0") == logdir
    df = client.metrics("plain")
    assert list(df.columns) == ["replica", "step"] and df.empty
    client.delete("plain")
    assert not Path(logdir).exists()


def test_a_logdir_must_name_a_persistent_volume_claim(tmp_path):
    client = TFJobClient("local")
    script = tmp_path / "x.py"
    script.write_text("pass\n")
    with pytest.raises(OptionError, match=r"--logdir on a cluster must be pvc://CLAIM/SUBPATH"):
        client.submit(job("bad", script), logdir="/data/logs", dry_run=True)
    with pytest.raises(SpecError, match=r"metadata\.annotations\[kubeflow-jupyter\.org/logdir\]"):
        client.submit(job("bad", script, {ANNOTATION_LOGDIR: "s3://bucket/logs"}), dry_run=True)
    with pytest.raises(OptionError, match="subpath must not hold"):
        client.submit(job("bad", script), logdir="pvc://claim/../etc", dry_run=True)
