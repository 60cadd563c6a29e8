"""The Kubernetes backend through TFJobClient, against the fake API server (and a real cluster
when $KUBEFLOW_JUPYTER_TEST_KUBECONFIG is set): the same functions for both."""

from __future__ import annotations

import pytest
from support.fake_cluster import fake_client

from kubeflow_jupyter.errors import (
    AlreadyExists,
    BackendError,
    JobNotFound,
    KubeflowJupyterError,
    ReplicaNotFound,
    SpecError,
)
from kubeflow_jupyter.testing.fake_kube.store import TFJOBS
from kubeflow_jupyter.testing.fake_kube.validation import prune_and_default
from kubeflow_jupyter.tfjob.schema import crd_schema


def _sent_bodies(fake, name):
    return [
        r.body
        for r in fake.requests
        if r.verb == "create" and "/tfjobs" in r.path and (r.body or {}).get("metadata", {}).get("name") == name
    ]


def test_submit_watch_to_success_shows_every_replica_from_the_start(kube, job_name, make_tfjob):
    client = kube.client()
    sub = client.submit(make_tfjob(job_name, workers=2, chief=True))
    first = sub.snapshot
    assert first.backend == "kubernetes" and first.namespace == client.namespace
    # Every replica of the spec is listed before any pod exists.
    assert [r.id for r in first.replicas] == ["chief-0", "worker-0", "worker-1"]
    assert {r.phase for r in first.replicas} == {"Pending"}
    assert [r.pod_name for r in first.replicas] == [
        f"{job_name}-chief-0",
        f"{job_name}-worker-0",
        f"{job_name}-worker-1",
    ]

    seen = list(client.watch(job_name, timeout=120))
    states = [s.state for s in seen]
    final = seen[-1]
    assert final.state == "Succeeded" and final.finished
    assert "Running" in states or final.condition("Running") is not None
    assert final.completion_time and final.start_time
    assert {r.phase for r in final.replicas if r.type == "Chief"} == {"Succeeded"}
    assert all(s.backend == "kubernetes" for s in seen)
    assert final.condition("Succeeded").reason == "TFJobSucceeded"

    waited = client.wait(job_name, timeout=60)
    assert waited.state == "Succeeded"
    assert job_name in [s.name for s in client.list()]
    assert client.manifest(job_name)["status"]["conditions"][-1]["type"] == "Succeeded"


def test_what_the_backend_sends_matches_the_crd_schema(kube, job_name, make_tfjob):
    import jsonschema

    if kube.fake is None:
        pytest.skip("needs the fake's request log to see the request bodies")
    client = kube.client()
    client.submit(make_tfjob(job_name, workers=1, chief=True, restart_policy="OnFailure"))
    (sent,) = _sent_bodies(kube.fake, job_name)
    schema = crd_schema()
    jsonschema.Draft7Validator(schema).validate(sent)
    body = {k: v for k, v in sent.items() if k != "metadata"}
    root = {**schema, "properties": {k: v for k, v in schema["properties"].items() if k != "metadata"}}
    # Nothing we send would be pruned as unknown by the API server.
    pruned = prune_and_default(body, root)
    assert _without_defaults(pruned, body) == body


def _without_defaults(pruned, sent):
    """``pruned`` restricted to the keys ``sent`` has (the server's defaults are additions, not losses)."""
    if isinstance(pruned, dict) and isinstance(sent, dict):
        return {k: _without_defaults(pruned[k], sent[k]) for k in sent if k in pruned}
    if isinstance(pruned, list) and isinstance(sent, list) and len(pruned) == len(sent):
        return [_without_defaults(p, s) for p, s in zip(pruned, sent, strict=True)]
    return pruned


def test_failed_replica_fails_the_job_and_wait_says_why(kube, job_name, make_tfjob):
    from kubeflow_jupyter.errors import JobFailed

    if kube.fake is None:
        pytest.skip("scripts a replica's exit code")
    kube.fake.script(job_name, "worker-1", exit_codes=[3])
    kube.fake.script(job_name, "worker-0", run_seconds=0.3)  # worker 0 finishing first would succeed the job
    client = kube.client()
    client.submit(make_tfjob(job_name, workers=2))
    with pytest.raises(JobFailed) as err:
        client.wait(job_name, timeout=60)
    snap = err.value.snapshot
    assert snap.state == "Failed"
    assert str(err.value) == (
        f"TFJob {job_name!r} failed: TFJobFailed: TFJob {client.namespace}/{job_name} "
        "has failed because 1 Worker replica(s) failed."
    )
    worker1 = snap.replica("worker-1")
    assert worker1.phase == "Failed" and worker1.exit_code == 3 and worker1.message == "Error"


def test_worker_that_fails_once_is_restarted_under_on_failure(kube, job_name, make_tfjob):
    if kube.fake is None:
        pytest.skip("scripts a replica's exit code")
    kube.fake.script(job_name, "worker-1", exit_codes=[1, 0])
    kube.fake.script(job_name, "worker-0", run_seconds=0.3)  # worker 0 decides success: outlive worker 1
    client = kube.client()
    client.submit(make_tfjob(job_name, workers=2, restart_policy="OnFailure"))
    restarts = [s.replica("worker-1").restarts for s in client.watch(job_name, timeout=60)]
    final = client.get(job_name)
    assert final.state == "Succeeded"
    assert max(restarts) == 1 and final.replica("worker-1").restarts == 1


def test_pending_replica_reports_why_and_keeps_the_job_from_running(kube, job_name, make_tfjob):
    if kube.fake is None:
        pytest.skip("scripts an unschedulable pod")
    kube.fake.script(job_name, "worker-0", pending=True)
    client = kube.client()
    client.submit(make_tfjob(job_name, workers=1))
    for snap in client.watch(job_name, timeout=5):
        if snap.replica("worker-0").message:
            break
    assert snap.state == "Created"
    assert snap.replica("worker-0").phase == "Pending"
    assert snap.replica("worker-0").message == "Unschedulable: 0/1 nodes are available: 1 Insufficient cpu."


def test_logs_of_a_replica_tail_and_follow(kube, job_name, make_tfjob):
    client = kube.client()
    if kube.fake is not None:
        kube.fake.script(job_name, "chief-0", logs=["loading data", "step 1 loss 0.9", "step 2 loss 0.5", "saved"])
    client.submit(make_tfjob(job_name, workers=1, chief=True))
    followed = list(client.logs(job_name, follow=True))  # default replica: the chief; waits for it to start
    client.wait(job_name, timeout=120)
    whole = list(client.logs(job_name))
    assert followed == whole and whole
    assert list(client.logs(job_name, "chief-0", tail=1)) == whole[-1:]
    assert list(client.logs(job_name, "worker-0"))
    if kube.fake is not None:
        assert whole == ["loading data", "step 1 loss 0.9", "step 2 loss 0.5", "saved"]


def test_unknown_replica_names_the_ones_that_exist(kube, job_name, make_tfjob):
    client = kube.client()
    client.submit(make_tfjob(job_name, workers=2), dry_run=False)
    with pytest.raises(ReplicaNotFound) as err:
        client.logs(job_name, "worker-7")
    assert str(err.value) == f"TFJob {job_name!r} has no replica 'worker-7' (replicas: worker-0, worker-1)"


def test_logs_of_a_replica_without_a_pod_or_not_started(kube, job_name, make_tfjob):
    if kube.fake is None:
        pytest.skip("holds pods back")
    kube.fake.script(job_name, "worker-1", never_starts=True, waiting_reason="ImagePullBackOff")
    client = kube.client()
    kube.fake.pause_operator()
    client.submit(make_tfjob(job_name, workers=2))
    with pytest.raises(ReplicaNotFound) as err:
        client.logs(job_name, "worker-0")
    assert str(err.value) == (
        f"replica worker-0 of TFJob {job_name!r} has no pod ({job_name}-worker-0) yet: the "
        "operator has not created it — try again in a moment, or use --follow to wait"
    )
    client.delete(job_name)
    kube.fake.pause_operator(False)
    client.submit(make_tfjob(job_name, workers=2))
    for snap in client.watch(job_name, timeout=10):
        if snap.replica("worker-1").message == "ImagePullBackOff":
            break
    with pytest.raises(KubeflowJupyterError) as err:
        client.logs(job_name, "worker-1")
    assert str(err.value) == (
        f"replica worker-1 of TFJob {job_name!r} has not started yet (ImagePullBackOff): "
        "no log to show — use --follow to wait for it"
    )


def _job_whose_worker_never_starts(kube, job_name, make_tfjob):
    """A one-worker job held in ImagePullBackOff by the fake (a real cluster cannot be told to)."""
    if kube.fake is None:
        pytest.skip("holds a container in ImagePullBackOff")
    kube.fake.script(job_name, "worker-0", never_starts=True, waiting_reason="ImagePullBackOff")
    client = kube.client()
    client.submit(make_tfjob(job_name, workers=1))
    return client


def test_following_a_replica_that_never_starts_ends_when_the_job_goes(kube, job_name, make_tfjob):
    import threading

    client = _job_whose_worker_never_starts(kube, job_name, make_tfjob)
    lines = client.logs(job_name, follow=True)  # returns at once; iterating waits for the container
    raised: list[BaseException] = []

    def follow():
        try:
            list(lines)
        except Exception as e:
            raised.append(e)

    t = threading.Thread(target=follow)
    t.start()
    kube.fake.wait_for(lambda: sum(r.verb == "watch" and job_name in r.path for r in kube.fake.server.requests) >= 2)
    client.delete(job_name)
    t.join(timeout=30)
    assert not t.is_alive()
    b = client.backend
    assert [str(e) for e in raised] in (
        [f"replica worker-0 of TFJob {job_name!r}: its pod {job_name}-worker-0 was deleted before it started"],
        [
            f"no TFJob named {job_name!r} in namespace {b.namespace!r} at {b.connection.host} ({b.connection.source}): "
            "it was deleted (see `kubeflow-jupyter list`)"
        ],
    )
    with pytest.raises(JobNotFound):
        client.logs(job_name, follow=True)


def _follow_in_thread(client, job_name: str, stop):
    """Follow worker-0's log on a thread; returns (thread, lines so far, event set on the first line)."""
    import threading

    lines: list[str] = []
    first = threading.Event()

    def follow():
        for line in client.logs(job_name, "worker-0", follow=True, stop=stop):
            lines.append(line)
            first.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    return thread, lines, first


def test_following_a_silent_replica_ends_when_stop_is_set(kube, job_name, make_tfjob):
    import threading

    if kube.fake is None:
        pytest.skip("scripts a replica that prints once, then stays silent")
    kube.fake.script(job_name, "worker-0", logs=["ready"], run_seconds=600)
    client = kube.client()
    client.submit(make_tfjob(job_name, workers=1))
    stop = threading.Event()
    thread, lines, first = _follow_in_thread(client, job_name, stop)
    assert first.wait(30)
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and lines == ["ready"]
    assert client.get(job_name).replica("worker-0").phase == "Running"  # it ended because we stopped
    client.delete(job_name)


def test_following_a_replica_that_never_starts_ends_when_stop_is_set(kube, job_name, make_tfjob):
    import threading

    client = _job_whose_worker_never_starts(kube, job_name, make_tfjob)
    stop = threading.Event()
    thread, lines, _ = _follow_in_thread(client, job_name, stop)
    kube.fake.wait_for(lambda: sum(r.verb == "watch" and job_name in r.path for r in kube.fake.server.requests) >= 2)
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and lines == []
    kube.fake.wait_for(lambda: not [w for w in kube.fake.server.open_watches() if job_name in w])
    client.delete(job_name)


def test_dry_run_is_validated_by_the_server_and_creates_nothing(kube, job_name, make_tfjob):
    client = kube.client()
    sub = client.submit(make_tfjob(job_name), dry_run=True)
    assert sub.dry_run and sub.snapshot is None
    with pytest.raises(JobNotFound):
        client.get(job_name)
    if kube.fake is not None:
        assert any("dryRun=All" in r.path for r in kube.fake.requests if r.verb == "create")


def test_server_side_validation_errors_name_the_field(kube, job_name, make_tfjob):
    client = kube.client()
    job = client.prepare(make_tfjob(job_name)).job
    job.manifest["spec"]["runPolicy"]["backoffLimit"] = "three"  # past our parser: only the server sees it
    with pytest.raises(SpecError) as err:
        client.backend.create(job)
    assert str(err.value) == (
        'invalid TFJob: spec.runPolicy.backoffLimit: Invalid value: "string": '
        'spec.runPolicy.backoffLimit in body must be of type integer: "string"'
    )
    assert err.value.problems[0].path == "spec.runPolicy.backoffLimit"


def test_second_submit_of_the_same_name_already_exists(kube, job_name, make_tfjob):
    client = kube.client()
    client.submit(make_tfjob(job_name))
    with pytest.raises(AlreadyExists) as err:
        client.submit(make_tfjob(job_name))
    b = client.backend
    assert str(err.value) == (
        f"a TFJob named {job_name!r} already exists in namespace {b.namespace!r} at {b.connection.host} "
        f"({b.connection.source}): delete it first or choose another --name"
    )


def test_missing_job_errors(kube, job_name):
    client = kube.client()
    b = client.backend
    where = f"in namespace {b.namespace!r} at {b.connection.host} ({b.connection.source})"
    for call in (
        lambda: client.get(job_name),
        lambda: client.delete(job_name),
        lambda: list(client.watch(job_name)),
        lambda: client.logs(job_name),
        lambda: client.manifest(job_name),
    ):
        with pytest.raises(JobNotFound) as err:
            call()
        assert str(err.value) == f"no TFJob named {job_name!r} {where} (see `kubeflow-jupyter list`)"


def test_delete_removes_the_job_and_its_pods_in_the_foreground(kube, job_name, make_tfjob):
    client = kube.client()
    client.submit(make_tfjob(job_name, workers=2))
    client.wait(job_name, timeout=120)
    client.delete(job_name)
    with pytest.raises(JobNotFound):
        client.get(job_name)
    if kube.fake is not None:
        assert kube.fake.pods(job_name) == []
        (delete,) = [r for r in kube.fake.requests if r.verb == "delete" and job_name in r.path]
        assert (
            "propagationPolicy=Foreground" in delete.path
            or (delete.body or {}).get("propagationPolicy") == "Foreground"
        )
    client.submit(make_tfjob(job_name))  # the name is free again at once


def test_namespace_in_the_spec_must_match_the_clients(kube, job_name, make_tfjob):
    client = kube.client()
    other = "elsewhere" if client.namespace != "elsewhere" else "other"
    text = make_tfjob(job_name).replace(f"name: {job_name}\n", f"name: {job_name}\n  namespace: {other}\n", 1)
    with pytest.raises(SpecError) as err:
        client.submit(text)
    assert str(err.value) == (
        f"invalid TFJob: metadata.namespace: {other!r} is not the namespace this client works "
        f"in ({client.namespace!r}): remove metadata.namespace, or use --namespace {other}"
    )
    with pytest.raises(JobNotFound):
        client.get(job_name)


def test_namespace_rule_is_the_same_on_every_backend(fake, job_name, make_tfjob, tmp_path, isolated_home):
    """One rule (``TFJobClient.prepare``), one message, nothing created: the local backend
    used to overwrite metadata.namespace silently, the Kubernetes backend refused it."""
    from kubeflow_jupyter.backends.kubernetes import KubernetesBackend
    from kubeflow_jupyter.backends.local import LocalBackend
    from kubeflow_jupyter.client import TFJobClient
    from kubeflow_jupyter.tfjob import parse_tfjob

    text = make_tfjob(job_name).replace(f"name: {job_name}\n", f"name: {job_name}\n  namespace: elsewhere\n", 1)
    expected = (
        "invalid TFJob: metadata.namespace: 'elsewhere' is not the namespace this client works in "
        "('team-a'): remove metadata.namespace, or use --namespace elsewhere"
    )
    kube_backend = KubernetesBackend(kubeconfig=str(fake.kubeconfig_path))
    local_backend = LocalBackend(namespace="team-a")
    assert kube_backend.namespace == local_backend.namespace == "team-a"
    for backend in (local_backend, kube_backend):
        client = TFJobClient(backend=backend)
        for dry_run in (True, False):
            with pytest.raises(SpecError) as err:
                client.submit(text, dry_run=dry_run, workdir=tmp_path)
            assert str(err.value) == expected, backend.name
            assert [(p.path, p.message) for p in err.value.problems] == [
                ("metadata.namespace", expected.split(": ", 2)[2])
            ]
        # A backend creates only what a client prepared for its namespace: nothing else reaches the store/API.
        for unprepared in (parse_tfjob(text).job, parse_tfjob(make_tfjob(job_name)).job):
            with pytest.raises(BackendError) as err:
                backend.create(unprepared, workdir=str(tmp_path))
            assert str(err.value) == (
                f"TFJob {job_name!r} was prepared for namespace {unprepared.namespace!r}, but this backend works "
                "in 'team-a': submit it through TFJobClient, which sets the namespace"
            ), backend.name
        assert job_name not in [s.name for s in client.list()], f"{backend.name}: nothing is created"
    assert fake.tfjob(job_name) is None and fake.tfjob(job_name, namespace="elsewhere") is None
    assert not [r for r in fake.requests if r.verb == "create" and job_name in str(r.body)]
    assert not any(isolated_home.rglob(job_name)), "the local store holds nothing of it"


def test_a_restarted_replica_shows_restarting_until_it_runs_again(fake, job_name, make_tfjob):
    """The simulated operator follows the same rule as the local runner: Restarting (reason
    TFJobRestarting) while a replica waits to run again, then Running replaces it."""
    fake.script(job_name, "worker-1", exit_codes=[1, 0])
    fake.script(job_name, "worker-0", run_seconds=0.3)
    client = fake_client(fake)
    client.submit(make_tfjob(job_name, workers=2, restart_policy="OnFailure"))
    seen = [
        (s.state, {c.type: c for c in s.conditions if c.status == "True"}) for s in client.watch(job_name, timeout=60)
    ]
    states = [state for state, _ in seen]
    assert states[-1] == "Succeeded"
    first = states.index("Restarting")
    assert "Running" in states[first:], "Running replaces Restarting once the replica runs again"
    restarting = next(conds["Restarting"] for state, conds in seen if state == "Restarting")
    assert (restarting.reason, restarting.message) == (
        "TFJobRestarting",
        f"TFJob team-a/{job_name} is restarting because 1 Worker replica(s) failed.",
    )
    assert all("Running" not in conds for state, conds in seen if state == "Restarting")


def test_run_policy_deadline_and_ttl_are_enforced_by_the_operator(kube, job_name, make_tfjob):
    if kube.fake is None:
        pytest.skip("scripts a replica that outlives its deadline")
    kube.fake.script(job_name, "worker-0", run_seconds=30)
    client = kube.client()
    client.submit(
        make_tfjob(job_name, workers=1, run_policy={"activeDeadlineSeconds": 1, "ttlSecondsAfterFinished": 0})
    )
    final = list(client.watch(job_name, timeout=30))[-1]
    assert final.state == "Failed"
    assert final.message == f"Job {job_name} has failed because it was active longer than specified deadline"
    kube.fake.wait_for(lambda: kube.fake.server.store.peek(TFJOBS, "team-a", job_name) is None)
    with pytest.raises(JobNotFound):
        client.get(job_name)
