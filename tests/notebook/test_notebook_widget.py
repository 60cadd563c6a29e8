"""JobMonitor widget state without a browser: trait values and Button.click(), driven by
pushed snapshots from the in-memory backend double (the real backend: test_notebook_e2e.py,
and the silent-replica test here)."""

from __future__ import annotations

import pytest
from notebook_helpers import TWO_REPLICA_JOB, eventually

ipywidgets = pytest.importorskip("ipywidgets")  # part of the `all` extra; always installed by `make test`

from kubeflow_jupyter.client import TFJobClient  # noqa: E402
from kubeflow_jupyter.tfjob.model import DEFAULT_NAMESPACE  # noqa: E402
from kubeflow_jupyter.widgets.job_monitor import JobMonitor  # noqa: E402

# Two real local replicas that print one line, then stay silent.
SILENT_WORKERS = """\
apiVersion: kubeflow.org/v1
kind: TFJob
metadata: {name: quiet}
spec:
  tfReplicaSpecs:
    Worker:
      replicas: 2
      restartPolicy: Never
      template:
        spec:
          containers:
          - name: tensorflow
            image: python:3.11
            command: [python, -c, "import time; print('up', flush=True); time.sleep(120)"]
"""


@pytest.fixture
def job(memory_client):
    memory_client.submit(TWO_REPLICA_JOB)
    return "mnist"


@pytest.fixture
def monitor(memory_client, job):
    m = JobMonitor(memory_client, job)
    yield m
    m.close()


def test_header_grid_progress_and_conditions_follow_the_job(monitor, memory_backend):
    eventually(lambda: "kfj-badge-created" in monitor.header.value, what="the Created state")
    assert "TFJob mnist" in monitor.header.value
    assert "memory" in monitor.header.value and DEFAULT_NAMESPACE in monitor.header.value
    assert monitor.replica_selector.options == ("chief-0", "worker-0")
    assert monitor.replica_selector.value == "chief-0"  # the chief's log matters most

    memory_backend.set_phase("mnist", "chief-0", "Running")
    memory_backend.set_phase("mnist", "worker-0", "Running")
    eventually(lambda: monitor.replica_table.value.count("kfj-badge-running") == 2, what="two Running replicas")
    assert "kfj-badge-running" in monitor.header.value
    assert "TFJobRunning" in monitor.conditions.value
    assert (monitor.progress.value, monitor.progress.max) == (0, 2)

    memory_backend.set_phase("mnist", "worker-0", "Succeeded", 0)
    eventually(lambda: monitor.progress.value == 1, what="one finished replica")
    assert monitor.progress_label.value == "1/2 replicas"

    memory_backend.set_phase("mnist", "chief-0", "Succeeded", 0)
    memory_backend.finish("mnist")
    eventually(lambda: monitor.state == "Succeeded", what="the final state")
    assert monitor.progress.value == 2 and monitor.progress.bar_style == "success"
    assert "kfj-badge-succeeded" in monitor.header.value
    current, _, superseded = monitor.conditions.value.partition("<details")
    assert current.index("Created") < current.index("Succeeded") and "Running" not in current
    assert "Running" in superseded and "(False)" in superseded  # turned False at the end: shown when expanded
    eventually(lambda: not monitor.running, what="the monitor's threads to stop")


def test_log_pane_tails_the_selected_replica_live(monitor, memory_backend):
    memory_backend.set_phase("mnist", "chief-0", "Running")
    memory_backend.set_phase("mnist", "worker-0", "Running")
    memory_backend.append_log("mnist", "chief-0", "chief says <hello> & bye")
    eventually(lambda: "chief says &lt;hello&gt; &amp; bye" in monitor.log_pane.widget.value, what="the chief's line")
    memory_backend.append_log("mnist", "chief-0", "second chief line")
    eventually(lambda: "second chief line" in monitor.log_pane.widget.value, what="a line pushed later")

    memory_backend.append_log("mnist", "worker-0", "worker line")
    monitor.replica_selector.value = "worker-0"  # what the user's selection does
    eventually(lambda: "worker line" in monitor.log_pane.widget.value, what="the worker's log")
    assert "chief says" not in monitor.log_pane.widget.value and "worker-0" in monitor.log_pane.widget.value
    memory_backend.append_log("mnist", "chief-0", "chief keeps talking")
    memory_backend.append_log("mnist", "worker-0", "worker again")
    eventually(lambda: "worker again" in monitor.log_pane.widget.value, what="the worker's next line")
    assert "chief keeps talking" not in monitor.log_pane.text()


def test_delete_asks_for_confirmation_first(monitor, memory_backend):
    eventually(lambda: monitor.snapshot is not None, what="the first snapshot")
    assert monitor.confirm_box.layout.display == "none"
    monitor.delete_button.click()
    assert monitor.confirm_box.layout.display == "flex"
    assert "Delete TFJob <b>mnist</b>" in monitor.confirm_label.value
    monitor.cancel_button.click()
    assert monitor.confirm_box.layout.display == "none"
    assert memory_backend.get("mnist").name == "mnist"  # nothing deleted

    monitor.delete_button.click()
    monitor.confirm_button.click()
    assert memory_backend.list() == []
    assert monitor.state == "Deleted" and monitor.delete_button.disabled
    assert "kfj-badge-deleted" in monitor.header.value
    eventually(lambda: not monitor.running, what="the monitor's threads to stop after delete")


def test_a_failed_job_shows_red_with_its_reason(monitor, memory_backend):
    memory_backend.set_phase("mnist", "chief-0", "Running")
    memory_backend.set_phase("mnist", "chief-0", "Failed", 3)
    memory_backend.finish("mnist", "Failed", "chief-0 exited with code 3")
    eventually(lambda: monitor.state == "Failed", what="the Failed state")
    assert monitor.progress.bar_style == "danger"
    assert "chief-0 exited with code 3" in monitor.conditions.value
    assert "<td" in monitor.replica_table.value and ">3<" in monitor.replica_table.value  # exit code column


def test_stop_ends_the_threads_of_a_running_job(monitor, memory_backend):
    memory_backend.set_phase("mnist", "chief-0", "Running")
    eventually(lambda: monitor.state == "Running", what="Running")
    assert monitor.running
    # nothing is pushed while the job just runs, yet the header's clock moves on
    eventually(lambda: "elapsed 0s" not in monitor.header.value, what="the elapsed time to advance")
    monitor.stop()
    assert not monitor._status_thread.is_alive() and not monitor.log_pane.running
    memory_backend.set_phase("mnist", "worker-0", "Running")
    memory_backend.append_log("mnist", "chief-0", "after stop")
    memory_backend.finish("mnist")
    assert monitor.state == "Running"  # no longer updated
    assert "after stop" not in monitor.log_pane.text()


def test_log_followers_end_on_replica_switch_and_stop_while_replicas_are_silent(tmp_path):
    client = TFJobClient("local")
    client.submit(SILENT_WORKERS, workdir=tmp_path)
    monitor = JobMonitor(client, "quiet")
    try:
        eventually(lambda: "up" in monitor.log_pane.text().splitlines(), what="worker-0's line")
        first = monitor._log_thread
        monitor.replica_selector.value = "worker-1"  # what the user's selection does
        first.join(10)
        assert not first.is_alive()
        eventually(lambda: "up" in monitor.log_pane.text().splitlines(), what="worker-1's line")
        second = monitor._log_thread
        assert second is not first and monitor.following == "worker-1"
        monitor.stop()
        second.join(10)
        assert not second.is_alive() and not monitor.running
        assert client.get("quiet").state == "Running"  # the followers ended, not the replicas
    finally:
        monitor.close()
        client.delete("quiet")


def test_watch_magic_and_submit_watch_show_the_monitor_in_a_kernel(
    ipython_shell, tfjob_magics, memory_backend, monkeypatch
):
    monkeypatch.setattr(type(tfjob_magics), "has_widget_frontend", lambda self: True)
    monitor = ipython_shell.run_cell_magic("tfjob", "submit --watch", TWO_REPLICA_JOB)
    try:
        assert isinstance(monitor, JobMonitor) and monitor.name == "mnist"
        eventually(lambda: monitor.snapshot is not None, what="the first snapshot")
    finally:
        monitor.close()
    again = ipython_shell.run_line_magic("tfjob", "watch mnist")
    try:
        assert isinstance(again, JobMonitor)
        memory_backend.finish("mnist")
        again.join(10)
        assert again.state == "Succeeded"
    finally:
        again.close()


def test_the_monitor_never_goes_back_to_an_older_state_nor_revives_a_deleted_job(monitor, memory_backend):
    from dataclasses import replace

    eventually(lambda: monitor.snapshot is not None, what="the first snapshot")
    memory_backend.set_phase("mnist", "chief-0", "Running")
    eventually(lambda: monitor.state == "Running", what="the Running state")
    running = replace(monitor.snapshot, backend="local", resource_version="7")
    monitor.apply(running)
    created = replace(running, resource_version="6", conditions=running.conditions[:1])
    assert created.state == "Created"
    monitor.apply(created)  # a late, older state: dropped
    assert monitor.state == "Running" and monitor.snapshot.resource_version == "7"

    monitor.delete_button.click()
    monitor.confirm_button.click()
    monitor.apply(replace(running, resource_version="8"))  # the watch's last update, after the delete
    assert monitor.state == "Deleted"
    assert "kfj-badge-deleted" in monitor.header.value
