"""Helpers for the notebook front end's unit tests (import them from here, not from conftest).

``InMemoryBackendDouble`` is a TEST DOUBLE of the Backend protocol, for widget and magic
unit tests only: jobs live in a dict and their lifecycle is driven step by step by the
test (``set_phase``, ``append_log``, ``finish``), so that every state the widget must
show can be reached deterministically. End-to-end tests (test_notebook_e2e.py) use the
real local backend with real TensorFlow processes instead, in a kernel ``execute_notebook`` runs.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from kubeflow_jupyter.errors import AlreadyExists, JobNotFound, ReplicaNotFound
from kubeflow_jupyter.tfjob.model import CHIEF_TYPES, DEFAULT_NAMESPACE, TFJob
from kubeflow_jupyter.tfjob.status import Condition, JobSnapshot, ReplicaState, now_iso

FINISHED_PHASES = ("Succeeded", "Failed")


class InMemoryBackendDouble:
    """Backend protocol over in-memory state; the test moves jobs forward by hand."""

    name = "memory"

    def __init__(self, namespace: str | None = None):
        self.namespace = namespace or DEFAULT_NAMESPACE
        self._changed = threading.Condition()
        self._jobs: dict[str, JobSnapshot] = {}
        self._manifests: dict[str, dict] = {}
        self._logs: dict[tuple[str, str], list[str]] = {}
        self._version = 0
        self.created: list[TFJob] = []  # every job create() accepted (dry runs excluded)

    # -- the protocol ---------------------------------------------------------------
    def create(self, job: TFJob, *, workdir: str | None = None, dry_run: bool = False) -> JobSnapshot:
        with self._changed:
            if job.name in self._jobs:
                raise AlreadyExists(job.name, f"in namespace {self.namespace}")
            snap = JobSnapshot(
                name=job.name,
                namespace=self.namespace,
                backend=self.name,
                uid=f"uid-{job.name}",
                created=now_iso(),
                conditions=[
                    Condition("Created", "True", "TFJobCreated", f"TFJob {job.name} is created.", now_iso(), now_iso())
                ],
                replicas=[ReplicaState(t, i, pod_name=f"{job.name}-{t.lower()}-{i}") for t, i in job.replicas()],
            )
            if dry_run:
                return snap
            self.created.append(job)
            self._jobs[job.name] = snap
            self._manifests[job.name] = job.to_manifest()
            self._bump()
            return copy.deepcopy(snap)

    def get(self, name: str) -> JobSnapshot:
        with self._changed:
            return copy.deepcopy(self._job(name))

    def list(self) -> list[JobSnapshot]:
        with self._changed:
            return [copy.deepcopy(s) for s in reversed(self._jobs.values())]

    def manifest(self, name: str) -> dict:
        with self._changed:
            self._job(name)
            return copy.deepcopy(self._manifests[name])

    def watch(self, name=None, *, timeout=None, stop=None) -> Iterator[JobSnapshot]:
        deadline = None if timeout is None else time.monotonic() + timeout
        seen = -1
        while not (stop and stop.is_set()) and (deadline is None or time.monotonic() < deadline):
            with self._changed:
                if self._version == seen:
                    self._changed.wait(0.05)
                    continue
                seen = self._version
                snap = copy.deepcopy(self._job(name))
            yield snap
            if snap.finished:
                return

    def logs(self, name, replica=None, *, follow=False, tail=None, stop=None) -> Iterator[str]:
        with self._changed:
            snap = self._job(name)
            rid = replica or next((r.id for r in snap.replicas if r.type in CHIEF_TYPES), "worker-0")
            if snap.replica(rid) is None:
                raise ReplicaNotFound(f"TFJob {name!r} has no replica {rid!r}")
            lines = self._logs.setdefault((name, rid), [])
            start = max(0, len(lines) - tail) if tail is not None else 0
        return self._follow(name, rid, start, follow, stop)

    def _follow(self, name: str, rid: str, pos: int, follow: bool, stop) -> Iterator[str]:
        while not (stop is not None and stop.is_set()):
            with self._changed:
                lines = self._logs[(name, rid)]
                chunk, pos = lines[pos:], len(lines)
                job = self._jobs.get(name)
                replica = job.replica(rid) if job else None
                # like the local backend: following ends with the replica, or with the job
                ended = replica is None or replica.phase in FINISHED_PHASES or job.finished
                if not chunk and follow and not ended:
                    self._changed.wait(0.05)
            yield from chunk
            if not follow or (ended and not chunk):
                return

    def delete(self, name: str) -> None:
        with self._changed:
            self._job(name)
            del self._jobs[name]
            self._bump()

    # -- the test's controls -------------------------------------------------------------
    def set_phase(self, name: str, rid: str, phase: str, exit_code: int | None = None) -> None:
        with self._changed:
            snap = self._jobs[name]
            replica = snap.replica(rid)
            replica.phase, replica.exit_code = phase, exit_code
            replica.started_at = replica.started_at or now_iso()
            if phase == "Running" and snap.condition("Running") is None:
                snap.start_time = now_iso()
                snap.conditions.append(
                    Condition("Running", "True", "TFJobRunning", f"TFJob {name} is running.", now_iso(), now_iso())
                )
            self._count(snap)
            self._bump()

    def append_log(self, name: str, rid: str, *lines: str) -> None:
        with self._changed:
            self._logs.setdefault((name, rid), []).extend(lines)
            self._bump()

    def finish(self, name: str, state: str = "Succeeded", message: str = "") -> None:
        with self._changed:
            snap = self._jobs[name]
            for c in snap.conditions:
                if c.type == "Running":
                    c.status = "False"
            reason = f"TFJob{state}"
            snap.conditions.append(
                Condition(state, "True", reason, message or f"TFJob {name} {state.lower()}.", now_iso(), now_iso())
            )
            snap.completion_time = now_iso()
            self._bump()

    # -- helpers ----------------------------------------------------------------------
    def _job(self, name: str | None) -> JobSnapshot:
        if name not in self._jobs:
            raise JobNotFound(str(name), f"in namespace {self.namespace}")
        return self._jobs[name]

    @staticmethod
    def _count(snap: JobSnapshot) -> None:
        snap.replica_statuses = {}
        for r in snap.replicas:
            counts = snap.replica_statuses.setdefault(r.type, {"active": 0, "succeeded": 0, "failed": 0})
            key = {"Running": "active", "Succeeded": "succeeded", "Failed": "failed"}.get(r.phase)
            if key:
                counts[key] += 1

    def _bump(self) -> None:
        self._version += 1
        self._changed.notify_all()


def eventually(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition"):
    """Poll until ``predicate()`` is truthy (threads are involved); fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def chief_and_worker_yaml(name: str, image: str, command: list[str] | None = None) -> str:
    """A TFJob of one Chief and one Worker, both running ``command`` (default: the image's own)."""
    container: dict = {"name": "tensorflow", "image": image}
    if command is not None:
        container["command"] = command
    replica = {"replicas": 1, "template": {"spec": {"containers": [container]}}}
    manifest = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name},
        "spec": {"tfReplicaSpecs": {"Chief": replica, "Worker": copy.deepcopy(replica)}},
    }
    return yaml.safe_dump(manifest, sort_keys=False)


TWO_REPLICA_JOB = chief_and_worker_yaml("mnist", "tensorflow/tensorflow:2.21.0", ["python", "train.py"])


def execute_notebook(nb, work: Path, home: Path, **client_options) -> None:
    """Run ``nb``'s cells in one fresh python3 kernel whose working directory is ``work``, on the
    local backend with its own ``home`` (the kernel inherits this process's environment).
    ``client_options``: nbclient's (``timeout`` defaults to 600 s)."""
    from nbclient import NotebookClient

    with pytest.MonkeyPatch.context() as env:
        env.setenv("KUBEFLOW_JUPYTER_HOME", str(home))
        env.setenv("KUBEFLOW_JUPYTER_BACKEND", "local")
        env.setenv("KUBECONFIG", "/dev/null")
        env.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
        client_options.setdefault("timeout", 600)
        NotebookClient(
            nb, kernel_name="python3", resources={"metadata": {"path": str(work)}}, **client_options
        ).execute()
