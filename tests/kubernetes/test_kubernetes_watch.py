"""The watch survives what real clusters do: dropped streams, server timeouts, compaction
(410 Expired), and it never polls (fake API server: faults are injected there)."""

from __future__ import annotations

import logging
import threading

import pytest
from support.fake_cluster import fake_client

from kubeflow_jupyter.client import TFJobClient
from kubeflow_jupyter.errors import BackendError, JobNotFound


def _watch_requests(fake, name_fragment: str) -> list:
    return [r for r in fake.requests if r.verb == "watch" and name_fragment in r.path]


def _run_until_running(client, name, fake=None):
    """Watch in the foreground until the job runs (and, with ``fake``, both watch streams are open),
    handing back the still-open iterator."""
    it = iter(client.watch(name, timeout=60))
    for snap in it:
        if snap.state == "Running":
            if fake is not None:  # both streams (TFJob, pods) have reached the server
                fake.wait_for(lambda: sum(r.verb == "watch" and name in r.path for r in fake.server.requests) >= 2)
            return it
    pytest.fail("the job never ran")


def test_dropped_streams_resume_from_the_last_resource_version(fake, job_name, make_tfjob, caplog):
    caplog.set_level(logging.INFO, logger="kubeflow_jupyter.backends.kubernetes.streams")
    fake.script(job_name, "worker-0", run_seconds=1.0)
    client = fake_client(fake)
    client.submit(make_tfjob(job_name, workers=1))
    it = _run_until_running(client, job_name, fake)
    assert fake.drop_watches() == 2  # the TFJob stream and the pod stream
    rest = list(it)
    assert rest[-1].state == "Succeeded" and rest[-1].replica("worker-0").phase == "Succeeded"
    resumed = [
        r for r in _watch_requests(fake, job_name) if "resourceVersion=" in r.path and "resourceVersion=0" not in r.path
    ]
    assert len(resumed) >= 4  # two opened from the lists, two resumed after the drop
    reconnects = [r.getMessage() for r in caplog.records if "connection lost" in r.getMessage()]
    assert len(reconnects) >= 2 and all("resuming from resourceVersion" in m for m in reconnects), reconnects


def test_expired_resource_version_relists_and_still_sees_the_end(fake, job_name, make_tfjob):
    fake.script(job_name, "worker-0", run_seconds=1.0)
    client = fake_client(fake)
    client.submit(make_tfjob(job_name, workers=1))
    it = _run_until_running(client, job_name, fake)
    fake.compact()
    fake.drop_watches()  # the resumed watches ask for a compacted resourceVersion: 410, then relist
    rest = list(it)
    assert rest[-1].state == "Succeeded"
    lists_after = [r for r in fake.requests if r.verb == "list" and job_name in r.path]
    assert len(lists_after) >= 3  # the two initial lists + at least one relist after 410


def test_server_side_watch_timeout_is_renewed(fake, job_name, make_tfjob):
    fake.script(job_name, "worker-0", run_seconds=2.5)
    client = fake_client(fake, watch_timeout=1)
    client.submit(make_tfjob(job_name, workers=1))
    final = list(client.watch(job_name, timeout=60))[-1]
    assert final.state == "Succeeded"
    assert len(_watch_requests(fake, job_name)) >= 4  # each stream renewed at least once


def test_the_clients_tunables_reach_the_backend_and_its_requests(fake, job_name, make_tfjob, monkeypatch):
    from kubeflow_jupyter.backends.kubernetes.backend import DEFAULT_REQUEST_TIMEOUT, DEFAULT_WATCH_TIMEOUT

    kubeconfig = str(fake.kubeconfig_path)
    default = TFJobClient("kubernetes", kubeconfig=kubeconfig).backend
    assert (default.request_timeout, default.watch_timeout) == (DEFAULT_REQUEST_TIMEOUT, DEFAULT_WATCH_TIMEOUT)
    monkeypatch.delenv("KUBEFLOW_JUPYTER_BACKEND")
    tuned = TFJobClient(kubeconfig=kubeconfig, request_timeout=7.5, watch_timeout=42)  # auto: the kubeconfig's cluster
    assert (tuned.backend_name, tuned.backend.request_timeout, tuned.backend.watch_timeout) == ("kubernetes", 7.5, 42)
    tuned.submit(make_tfjob(job_name, workers=1))
    assert list(tuned.watch(job_name, timeout=60))[-1].finished
    assert all("timeoutSeconds=42" in r.path for r in _watch_requests(fake, job_name))
    assert _watch_requests(fake, job_name)
    # The local backend makes no API requests: the same options are accepted and ignored.
    assert TFJobClient("local", request_timeout=7.5, watch_timeout=42).backend_name == "local"


def test_no_requests_while_nothing_changes(fake, job_name, make_tfjob):
    """After the watch opens, a quiet job costs no requests (push, not polling)."""
    fake.script(job_name, "worker-0", logs=["a", "b"], run_seconds=1.5)
    client = fake_client(fake)
    client.submit(make_tfjob(job_name, workers=1))
    it = _run_until_running(client, job_name, fake)
    before = len(fake.requests)
    rest = list(it)  # ~1.5 s of running with no status change, then the end
    during = fake.requests[before:]
    assert rest[-1].state == "Succeeded"
    # only the final pod read (consistency) — no periodic GETs
    assert [r.verb for r in during] == ["list"]


def test_watch_all_jobs_of_the_namespace_until_stopped(fake, job_name, make_tfjob):
    client = fake_client(fake)
    names = [f"{job_name}-a", f"{job_name}-b"]
    stop = threading.Event()
    seen: dict[str, str] = {}

    def consume():
        for snap in client.watch(stop=stop):
            seen[snap.name] = snap.state
            if all(seen.get(n) == "Succeeded" for n in names):
                stop.set()

    t = threading.Thread(target=consume)
    t.start()
    for n in names:
        client.submit(make_tfjob(n, workers=1))
    t.join(timeout=60)
    assert not t.is_alive()
    assert {n: seen[n] for n in names} == {n: "Succeeded" for n in names}


def test_job_deleted_while_watched(fake, job_name, make_tfjob):
    fake.script(job_name, "worker-0", run_seconds=5)
    client = fake_client(fake)
    client.submit(make_tfjob(job_name, workers=1))
    it = _run_until_running(client, job_name)
    client.delete(job_name)
    with pytest.raises(JobNotFound) as err:
        list(it)
    assert str(err.value).endswith("(see `kubeflow-jupyter list`)") and "it was deleted" in str(err.value)


def test_watch_rides_out_a_brief_server_error(fake, job_name, make_tfjob):
    fake.script(job_name, "worker-0", run_seconds=1.0)
    client = fake_client(fake)
    client.submit(make_tfjob(job_name, workers=1))
    it = _run_until_running(client, job_name, fake)
    fake.fail_next(2, code=500, path_contains="watch=true")
    fake.drop_watches()
    assert list(it)[-1].state == "Succeeded"


def test_watch_gives_up_on_a_server_that_stays_down(fake, job_name, make_tfjob):
    fake.script(job_name, "worker-0", run_seconds=5)
    client = fake_client(fake)
    client.submit(make_tfjob(job_name, workers=1))
    it = _run_until_running(client, job_name, fake)
    fake.fail_next(100, code=503, path_contains="watch=true", message="the server is shutting down")
    fake.drop_watches()
    with pytest.raises(BackendError) as err:
        list(it)
    b = client.backend
    assert str(err.value) == (
        f"the Kubernetes API server at {fake.url} ({b.connection.source}) failed (503 Service Unavailable): the "
        "server is shutting down — try again; if it persists, the cluster needs attention"
    )


def test_timeout_ends_an_unfinished_watch(fake, job_name, make_tfjob):
    fake.script(job_name, "worker-0", pending=True)
    client = fake_client(fake)
    client.submit(make_tfjob(job_name, workers=1))
    snaps = list(client.watch(job_name, timeout=0.5))
    assert snaps and not snaps[-1].finished
