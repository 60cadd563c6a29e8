"""collect() and MetricsFollower against the real local backend: a chief printing report() lines."""

from __future__ import annotations

import math
import time

import pytest
from support.manifests import HELLO, tfjob_manifest

from kubeflow_jupyter.client import TFJobClient
from kubeflow_jupyter.errors import JobNotFound, ReplicaNotFound
from kubeflow_jupyter.metrics import MetricsFollower, collect

pytestmark = pytest.mark.timeout(180)

STEPS = 8
TRAIN = (
    "import time\n"
    "from kubeflow_jupyter.metrics import report\n"
    "print('starting', flush=True)\n"
    f"for step in range({STEPS}):\n"
    "    report(step, loss=1 / (step + 1), accuracy=step / 10)\n"
    "    time.sleep(0.15)\n"
)
WORKER = "from kubeflow_jupyter.metrics import report\nreport(0, loss=9.0)\nreport(1, loss=8.0)\n"


@pytest.fixture
def client():
    return TFJobClient("local")


def submit(client: TFJobClient, name: str) -> None:
    manifest = tfjob_manifest(name, {"Chief": (1, "Never", TRAIN), "Worker": (1, "Never", WORKER)})
    client.submit(manifest)


def test_metrics_collect_reads_the_result_replica_and_event_files(client, tf_logdir):
    submit(client, "collect")
    client.wait("collect", timeout=120)
    frame = collect(client, "collect", logdir=tf_logdir)
    # The chief's log records, and the event-file scalars (worker-1 names no replica of this job:
    # its run stays a run, with the result replica).
    assert list(frame.columns) == [
        "replica",
        "step",
        "loss",
        "accuracy",
        "val_loss",
        "train/epoch_loss",
        "worker-1/loss",
    ]
    assert set(frame["replica"]) == {"chief-0"}
    assert list(frame["step"]) == list(range(STEPS))
    assert list(frame["loss"]) == [1 / (s + 1) for s in range(STEPS)]
    assert frame["val_loss"].iloc[:5].round(6).tolist() == [round(1 / (s + 1), 6) for s in range(5)]
    assert math.isnan(frame["val_loss"].iloc[5])  # a step only the log has

    everyone = collect(client, "collect", "all", logdir=tf_logdir)
    assert list(everyone["replica"].unique()) == ["chief-0", "worker-0"]
    worker = everyone[everyone["replica"] == "worker-0"]
    assert worker["loss"].tolist() == [9.0, 8.0]

    one = collect(client, "collect", "worker-0")
    assert list(one.columns) == ["replica", "step", "loss"] and len(one) == 2


def test_metrics_collect_refuses_unknown_jobs_and_replicas(client):
    with pytest.raises(JobNotFound):
        collect(client, "nope")
    submit(client, "known")
    with pytest.raises(ReplicaNotFound):
        collect(client, "known", "ps-3")


def test_metrics_follower_yields_points_live_and_ends_with_the_logs(client):
    submit(client, "live")
    seen = []
    started = time.monotonic()
    with MetricsFollower(client, "live") as follower:
        for point in follower:
            seen.append((point.replica, point.metric, point.step, point.value, time.monotonic() - started))
        assert follower.join(10)
    loss = [(s, v) for r, m, s, v, _ in seen if m == "loss"]
    # Points that arrived before iteration began are in the table, not re-yielded: check the table.
    assert follower.table.series("loss", "chief-0").points() == [[s, 1 / (s + 1)] for s in range(STEPS)]
    assert loss == sorted(loss) and all(r == "chief-0" for r, *_ in seen)
    # Live: the points came over the run (~1.2 s of training), not all at once at the end.
    arrivals = [t for *_, t in seen]
    assert len(arrivals) >= 4 and arrivals[-1] - arrivals[0] > 0.5


def test_metrics_follower_stop_ends_its_threads(client):
    client.submit(tfjob_manifest("sleepy", {"Worker": (1, "Never", "import time; time.sleep(60)")}))
    follower = MetricsFollower(client, "sleepy").start()
    time.sleep(0.3)
    assert follower.running
    follower.stop()
    assert follower.join(10)
    assert not follower.running
    assert list(follower.points(timeout=0.1)) == []
    client.delete("sleepy")


def test_metrics_worker_hello_has_no_records(client):
    client.submit(tfjob_manifest("plain", {"Worker": (1, "Never", HELLO)}))
    client.wait("plain", timeout=120)
    frame = collect(client, "plain")
    assert list(frame.columns) == ["replica", "step"] and frame.empty
