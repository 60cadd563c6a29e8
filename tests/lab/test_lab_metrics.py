"""The sidebar's metrics endpoint (jobs/<name>/metrics) against the real local backend, and a
job's TensorBoard reached through jupyter-server-proxy."""

from __future__ import annotations

import json
import time

import pytest
from support.lab_api import fetch_json, submit

pytestmark = pytest.mark.timeout(240)

STEPS = 10
TRAIN = (
    "import time\n"
    "from kubeflow_jupyter.metrics import report\n"
    f"for step in range({STEPS}):\n"
    "    report(step, loss=1 / (step + 1), accuracy=step / 10)\n"
    "    time.sleep(0.1)\n"
)


@pytest.fixture
def jp_server_config():
    return {
        "ServerApp": {
            "jpserver_extensions": {"kubeflow_jupyter": True, "jupyter_server_proxy": True},
            "allow_unauthenticated_access": False,
        }
    }


def merge(held: dict, reply: dict) -> None:
    for metric, replicas in reply["series"].items():
        for replica, points in replicas.items():
            held.setdefault(metric, {}).setdefault(replica, {}).update({step: value for step, value in points})


async def test_lab_metrics_long_polls_new_points_until_the_job_ends(jp_fetch, write_job):
    await submit(jp_fetch, write_job("jobs/train.yaml", "train", TRAIN))
    held: dict = {}
    cursor = None
    replies = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        params = {"wait": "10"} | ({"since": cursor} if cursor else {})
        code, reply = await fetch_json(jp_fetch, "jobs", "train", "metrics", params=params)
        assert code == 200, reply
        assert reply["reset"] == (cursor is None)
        replies.append(reply)
        merge(held, reply)
        cursor = reply["cursor"]
        if not reply["live"]:
            break
    assert reply["replicas"] == ["worker-0"] and not reply["live"]
    assert held["loss"]["worker-0"] == {s: 1 / (s + 1) for s in range(STEPS)}
    assert held["accuracy"]["worker-0"] == {s: s / 10 for s in range(STEPS)}
    assert replies[0]["goals"] == {"loss": "min", "accuracy": "max"}
    # Incremental: across the replies each point came once.
    sent = sum(len(p) for r in replies for reps in r["series"].values() for p in reps.values())
    assert sent == 2 * STEPS
    # Nothing new after the end: an empty answer at once, not a wait.
    started = time.monotonic()
    code, last = await fetch_json(jp_fetch, "jobs", "train", "metrics", params={"since": cursor, "wait": "10"})
    assert code == 200 and last["series"] == {} and last["cursor"] == cursor and not last["reset"]
    assert time.monotonic() - started < 5
    # A cursor of another follow (a restarted server) gets everything again.
    code, again = await fetch_json(jp_fetch, "jobs", "train", "metrics", params={"since": "1-5"})
    assert again["reset"] and len(again["series"]["loss"]["worker-0"]) == STEPS
    # Deleting the job drops its follow.
    response = await jp_fetch("kubeflow-jupyter", "api", "jobs", "train", method="DELETE")
    assert response.code == 204
    code, _ = await fetch_json(jp_fetch, "jobs", "train", "metrics")
    assert code == 404


async def test_lab_metrics_refuses_bad_requests(jp_fetch, write_job):
    code, body = await fetch_json(jp_fetch, "jobs", "nope", "metrics")
    assert code == 404 and "nope" in body["message"]
    await submit(jp_fetch, write_job("jobs/short.yaml", "short"))
    code, body = await fetch_json(jp_fetch, "jobs", "short", "metrics", params={"replica": "ps-9"})
    assert code == 404 and "ps-9" in body["message"]
    code, body = await fetch_json(jp_fetch, "jobs", "short", "metrics", params={"wait": "-1"})
    assert code == 400 and "wait" in body["message"]
    code, body = await fetch_json(jp_fetch, "jobs", "short", "metrics", params={"since": "x" * 100})
    assert code == 400


async def test_lab_metrics_needs_authentication(jp_fetch):
    response = await jp_fetch(
        "kubeflow-jupyter", "api", "jobs", "x", "metrics", raise_error=False, headers={"Authorization": ""}
    )
    assert response.code == 403


def write_scalars(logdir, tag: str, steps: int) -> None:
    """An event file with TF1-style scalars, written by TensorBoard's own writer (no TensorFlow)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(logdir))
    for step in range(steps):
        value = summary_pb2.Summary.Value(tag=tag, simple_value=1.0 / (step + 1))
        writer.add_event(event_pb2.Event(step=step, wall_time=time.time(), summary=summary_pb2.Summary(value=[value])))
    writer.close()


async def test_lab_metrics_tensorboard_is_reachable_through_jupyter_server_proxy(jp_fetch, tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("jupyter_server_proxy")
    from kubeflow_jupyter.metrics.tensorboard import TensorBoardManager

    write_scalars(tmp_path, "val_loss", 3)
    manager = TensorBoardManager()
    try:
        board = manager.start("proxied", tmp_path)
        response = await jp_fetch("proxy", str(board.port), "data", "plugin", "scalars", "tags", raise_error=False)
        assert response.code == 200, response.body[:300]
        assert "val_loss" in json.loads(response.body)["."]
        page = await jp_fetch("proxy", str(board.port), "", raise_error=False)
        assert page.code == 200 and b"tensorboard" in page.body.lower()  # its page, through the proxy
    finally:
        manager.stop("proxied")
