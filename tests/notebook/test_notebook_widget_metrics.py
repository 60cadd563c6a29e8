"""The JobMonitor's chart panel over real local jobs whose replicas print ``report()`` lines:
the chart widget's traits (what the browser draws) hold every step, the last and best values,
and its follower ends with the monitor; plus ``%tfjob logs`` folding TensorFlow's start-up lines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from notebook_helpers import eventually

pytest.importorskip("anywidget")

from IPython.utils.capture import capture_output

from kubeflow_jupyter.client import TFJobClient
from kubeflow_jupyter.widgets.job_monitor import JobMonitor
from kubeflow_jupyter.widgets.metrics_chart import MAX_SHOWN_POINTS, thin

STEPS = 20
# Neither curve is monotonic, so the best value is not the last one.
LOSS = [round(1.0 / (s + 1) + (0.25 if s == STEPS - 1 else 0.0), 6) for s in range(STEPS)]
ACCURACY = [round(s / 25 - (0.3 if s == STEPS - 1 else 0.0), 6) for s in range(STEPS)]

REPORTING = f"""
import time
from kubeflow_jupyter import report

print("warming up", flush=True)
time.sleep(1.0)  # the panel stays hidden until the first record
for step, (loss, acc) in enumerate(zip({LOSS!r}, {ACCURACY!r})):
    report(step, loss=loss, accuracy=acc)
    time.sleep(0.05)
print("done", flush=True)
"""

# A few records, then a long silence: the follower is still following when the monitor ends.
REPORT_THEN_WAIT = """
import time
from kubeflow_jupyter import report

for step in range(3):
    report(step, loss=1.0 / (step + 1))
time.sleep(120)
"""

# The chief ends last: the job succeeds with it, and a worker still running then is stopped.
REPORT_ON_EACH_REPLICA = """
import json, os, time
from kubeflow_jupyter import report

for step in range(4):
    report(step, loss=1.0 / (step + 1))
if json.loads(os.environ["TF_CONFIG"])["task"]["type"] == "chief":
    time.sleep(2.0)
"""

SILENT = "print('no metrics here', flush=True)\nprint('step 3 of 5 but no pairs', flush=True)\n"

# Lines from labextension/src/__tests__/tf_startup_sample.log, as TensorFlow writes them (stderr).
STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796100349.658140   10497 port.cc:153] oneDNN custom operations are on. You may see slightly"
    " different numerical results due to floating-point round-off errors from different computation orders."
    " To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796100349.700311   10497 cudart_stub.cc:31] Could not find cuda drivers on your machine,"
    " GPU will not be used.",
    "E0000 00:00:1796100351.000002   10497 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to"
    " register factory for plugin cuDNN when one has already been registered",
]
STARTUP_THEN_TRAINING = f"""
import sys
for line in {STARTUP!r}:
    print(line, file=sys.stderr, flush=True)
print("epoch 1 of 2", flush=True)
print("Training finished.", flush=True)
"""


def job(name: str, script: Path, workers: int = 0) -> dict:
    container = {"name": "tensorflow", "image": "unused", "command": [sys.executable, str(script)]}
    replica = {"replicas": 1, "restartPolicy": "Never", "template": {"spec": {"containers": [container]}}}
    specs = {"Chief": replica}
    if workers:
        idle = {"name": "tensorflow", "image": "unused", "command": [sys.executable, "-c", "pass"]}
        specs["Worker"] = {"replicas": workers, "restartPolicy": "Never", "template": {"spec": {"containers": [idle]}}}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name},
        "spec": {"tfReplicaSpecs": specs},
    }


def submit(client: TFJobClient, tmp_path: Path, name: str, source: str, workers: int = 0) -> None:
    script = tmp_path / f"{name}.py"
    script.write_text(source)
    client.submit(job(name, script, workers))


def test_the_chart_panel_holds_every_step_with_last_and_best_and_ends_with_the_job(tmp_path):
    client = TFJobClient("local")
    submit(client, tmp_path, "curves", REPORTING, workers=1)
    monitor = JobMonitor(client, "curves")
    chart = monitor.metrics.widget
    try:
        assert chart in monitor.children
        assert chart.layout.display == "none" and chart.series == {}  # nothing reported yet
        eventually(lambda: monitor.metrics.shown, timeout=60, what="the panel to appear with the first record")
        assert chart.layout.display != "none" and "loss" in chart.series
        monitor.join(60)
        assert monitor.state == "Succeeded" and not monitor.running
        assert monitor.metrics.follower is not None and not monitor.metrics.follower.running

        assert list(chart.series) == ["loss", "accuracy"]
        assert chart.series["loss"] == {"chief-0": [[s, v] for s, v in enumerate(LOSS)]}  # result replica only
        assert chart.series["accuracy"] == {"chief-0": [[s, v] for s, v in enumerate(ACCURACY)]}
        loss, accuracy = chart.summary["loss"]["chief-0"], chart.summary["accuracy"]["chief-0"]
        assert loss["last"] == [STEPS - 1, LOSS[-1]] and loss["goal"] == "min"
        assert loss["best"] == [STEPS - 2, min(LOSS)] and min(LOSS) == LOSS[STEPS - 2]
        assert accuracy["last"] == [STEPS - 1, ACCURACY[-1]] and accuracy["goal"] == "max"
        assert accuracy["best"] == [STEPS - 2, max(ACCURACY)] and max(ACCURACY) == ACCURACY[STEPS - 2]
        assert chart.live is False  # the header says "ended"
        # the front end travels with the widget: uPlot (its license kept) and the chart module
        assert "Copyright (c) 2025, Leon Sorokin" in chart._esm and "(MIT Licensed)" in chart._esm
        assert "export default { render }" in chart._esm and ".uplot" in chart._css
    finally:
        monitor.close()
        client.delete("curves")


def test_every_replica_gets_its_own_line_when_asked(tmp_path):
    client = TFJobClient("local")
    script = tmp_path / "pair.py"
    script.write_text(REPORT_ON_EACH_REPLICA)
    spec = job("pair", script)
    spec["spec"]["tfReplicaSpecs"]["Worker"] = spec["spec"]["tfReplicaSpecs"]["Chief"]
    client.submit(spec)
    monitor = JobMonitor(client, "pair", metrics_replica="all")
    try:
        monitor.join(60)
        assert not monitor.running
        expected = [[s, 1.0 / (s + 1)] for s in range(4)]
        assert monitor.metrics.widget.series == {"loss": {"chief-0": expected, "worker-0": expected}}
    finally:
        monitor.close()
        client.delete("pair")


def test_the_follower_stops_with_close_and_with_the_jobs_delete(tmp_path):
    client = TFJobClient("local")
    submit(client, tmp_path, "waits", REPORT_THEN_WAIT)
    closed, deleting = JobMonitor(client, "waits"), JobMonitor(client, "waits")
    try:
        for monitor in (closed, deleting):
            eventually(
                lambda m=monitor: len(m.metrics.widget.series.get("loss", {}).get("chief-0", [])) == 3,
                timeout=60,
                what="three loss points",
            )
            assert monitor.metrics.follower.running and monitor.metrics.widget.live

        follower = closed.metrics.follower
        closed.close()
        assert not follower.running and not closed.metrics.running and not closed.running
        assert client.get("waits").state == "Running"  # the follow ended, not the job

        follower = deleting.metrics.follower
        deleting.delete_button.click()
        deleting.confirm_button.click()
        assert deleting.state == "Deleted"
        follower.join(10)
        assert not follower.running and not deleting.metrics.running
    finally:
        closed.close()
        deleting.close()
        if any(s.name == "waits" for s in client.list()):
            client.delete("waits")


def test_no_chart_panel_for_a_job_without_metrics(tmp_path):
    client = TFJobClient("local")
    submit(client, tmp_path, "plain", SILENT)
    monitor = JobMonitor(client, "plain")
    try:
        monitor.join(60)
        assert monitor.state == "Succeeded" and not monitor.running
        eventually(lambda: "no metrics here" in monitor.log_pane.text(), what="the replica's log")
        chart = monitor.metrics.widget
        assert chart.layout.display == "none" and chart.series == {} and chart.summary == {}
    finally:
        monitor.close()
        client.delete("plain")


def test_thin_keeps_at_most_the_limit_with_both_ends_and_the_extremes():
    points = [[s, (s * 7919) % 1000 / 10.0] for s in range(10_000)]
    points[5_000][1], points[7_777][1] = -5.0, 500.0
    shown = thin(points)
    assert len(shown) <= MAX_SHOWN_POINTS
    assert shown[0] == points[0] and shown[-1] == points[-1]
    assert [5_000, -5.0] in shown and [7_777, 500.0] in shown
    assert [p[0] for p in shown] == sorted({p[0] for p in shown})  # in step order, no duplicate
    few = points[:10]
    assert thin(few) is few


def test_logs_magic_folds_tensorflow_start_up_lines(tmp_path, ipython_shell, tfjob_magics, capsys):
    client = TFJobClient("local")
    tfjob_magics.client_factory = lambda backend, namespace, context, kubeconfig: client
    submit(client, tmp_path, "startup", STARTUP_THEN_TRAINING)
    marker = f"[TensorFlow start-up messages ({len(STARTUP)} lines)]"
    try:
        assert client.wait("startup", timeout=60).state == "Succeeded"
        raw = list(client.logs("startup", "chief-0"))
        start = raw.index(STARTUP[0])
        assert raw[start : start + len(STARTUP)] == STARTUP  # the raw log is untouched (what the CLI prints)

        # A terminal-less shell prints a display's text/plain: the marker stands in the start-up lines' place.
        capsys.readouterr()
        ipython_shell.run_line_magic("tfjob", "logs startup")
        assert capsys.readouterr().out.splitlines() == [*raw[:start], marker, "epoch 1 of 2", "Training finished."]

        # In a notebook the marker is a display of its own, which expands to the raw lines.
        with capture_output() as shown:
            ipython_shell.run_line_magic("tfjob", "logs startup")
        assert shown.stdout.splitlines() == [*raw[:start], "epoch 1 of 2", "Training finished."]
        assert len(shown.outputs) == 1
        bundle = shown.outputs[0].data
        assert bundle["text/plain"] == marker
        assert "<details" in bundle["text/html"] and "cudart_stub.cc:31" in bundle["text/html"]
    finally:
        client.delete("startup")
