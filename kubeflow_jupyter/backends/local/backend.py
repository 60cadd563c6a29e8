"""LocalBackend: TFJobs as processes on this machine, state on disk, readable from any process.

``create`` checks the job can run here, writes its directory (see :mod:`.store`) and
starts a detached :mod:`.supervisor`; everything else (get, list, manifest, watch,
logs, delete) reads and acts on the disk alone, so another kernel, the CLI or the
server extension sees the same jobs.
"""

from __future__ import annotations

import builtins
import io
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import AlreadyExists, BackendError, FieldProblem, JobNotFound, ReplicaNotFound, SpecError
from ...tfjob import rules
from ...tfjob.model import DEFAULT_NAMESPACE, ENV_LOGDIR, TFJob, pod_name
from ...tfjob.status import ENDED_PHASES, JobSnapshot, ReplicaState, now_iso
from ..base import Stop, require_namespace
from . import journal
from .journal import RESCAN, JournalReader
from .lost import record_supervisor_lost
from .plan import plan_job
from .processes import STOP_GRACE_SECONDS, is_alive, stop_groups
from .store import (
    PAYLOAD_DIR,
    UNREADABLE,
    JobDir,
    Store,
    default_home,
    is_valid_name,
    read_json,
    unreadable_snapshot,
    write_json_atomic,
    writing,
)

# Watching is push: every status write and deletion adds a line to the namespace's
# journal (see .journal), which inotify announces; a watch re-reads only the jobs named.
# WATCH_INTERVAL bounds how long a watch takes to notice ``stop`` (and, without
# inotify, a new journal line); a log follower polls its file at the same pace.
WATCH_INTERVAL = 0.05
STOP_CHECK_SECONDS = 0.1
# How often a watch checks that the supervisors of unfinished jobs live. Their
# watchdogs record a lost supervisor at once; this covers a watchdog lost with it.
LOST_CHECK_SECONDS = 2.0
SUPERVISOR_START_TIMEOUT = 30.0
DELETE_GRACE_SECONDS = 5.0

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ...runcell.payload import Payload


class LocalBackend:
    """The embedded default backend (see docs/local.md)."""

    name = "local"

    def __init__(self, namespace: str | None = None, home: str | os.PathLike | None = None):
        self.namespace = namespace or DEFAULT_NAMESPACE
        if not is_valid_name(self.namespace):
            raise SpecError(
                FieldProblem(
                    "metadata.namespace",
                    (
                        f"{self.namespace!r} is not a valid namespace: use a DNS-1123 label "
                        "(lowercase letters, digits and '-', at most 63 characters)"
                    ),
                )
            )
        self.home = Path(home) if home else default_home()
        self.store = Store(self.home, self.namespace)

    def __repr__(self) -> str:
        return f"LocalBackend(namespace={self.namespace!r}, home={str(self.home)!r})"

    # -- create ----------------------------------------------------------------------
    def payload_job(self, job: TFJob, payload: Payload) -> tuple[TFJob, list[dict]]:
        """Every replica runs the payload's bootstrap with this interpreter (never installing
        packages), in the job's snapshot directory (``<job dir>/payload``, see ``create``)."""
        from ...runcell.errors import PayloadError
        from ...runcell.payload import missing_local_packages
        from ...tfjob.spec import parse_tfjob

        missing = missing_local_packages(payload.packages)
        if missing:
            raise PayloadError(
                f"--packages {' '.join(missing)}: not installed in this environment, and the local backend never "
                f"installs packages: pip install them in the notebook's environment first"
            )
        manifest = job.to_manifest()
        argv = payload.argv(sys.executable, install_packages=False)
        for spec in manifest["spec"]["tfReplicaSpecs"].values():
            for container in spec["template"]["spec"]["containers"]:
                container["command"] = list(argv)
                container.pop("args", None)
                container.pop("workingDir", None)
        return parse_tfjob(manifest).job, []

    def create(
        self, job: TFJob, *, workdir: str | None = None, dry_run: bool = False, payload: Payload | None = None
    ) -> JobSnapshot:
        """With ``payload``, the payload is written into the job's directory (``payload/``) before
        the supervisor starts, and every replica runs there: one snapshot shared by the job's
        replicas (processes of one machine share its disk), which editing the notebook's files
        later does not change; it goes with the job when the job is deleted."""
        require_namespace(job, self.namespace)
        target = self.store.job(job.name)
        if target is None:
            raise BackendError(f"{job.name!r} cannot be a job name here (DNS-1035 label)")
        staged_payload: Path | None = None
        if payload is not None:
            # The plan checks the bootstrap exists where replicas run: write it to a scratch copy first.
            with writing(self.store.root):
                staged_payload = Path(self.store.staging_dir(job.name + "-payload"))
                payload.write_to(staged_payload)
            workdir = str(staged_payload)
        try:
            workdir = str(Path(workdir or os.getcwd()).resolve())
            plan = plan_job(
                job, self.namespace, workdir
            )  # SpecError, before anything exists, if a replica cannot run here
        finally:
            if staged_payload is not None:
                shutil.rmtree(staged_payload, ignore_errors=True)
        if payload is not None:
            final = str(target.path / PAYLOAD_DIR)
            plan = replace(plan, launches=[replace(launch, cwd=final) for launch in plan.launches])
        # Every replica writes its event files into the job's own logdir (a pvc:// annotation is the cluster's).
        plan = replace(
            plan,
            launches=[replace(launch, env={**launch.env, ENV_LOGDIR: str(target.logdir)}) for launch in plan.launches],
        )
        if target.exists():
            raise AlreadyExists(job.name, f"in namespace {self.namespace!r} (local)")
        snapshot = self._initial_snapshot(job)
        if dry_run:
            return snapshot
        with writing(self.store.root):
            staging = JobDir(self.store.staging_dir(job.name))
            try:
                if payload is not None:
                    payload.write_to(staging.path / PAYLOAD_DIR)
                manifest = job.to_manifest()
                manifest["metadata"].update(uid=snapshot.uid, creationTimestamp=snapshot.created)
                write_json_atomic(staging.manifest_file, manifest)  # for `get -o yaml`: the supervisor reads the plan
                write_json_atomic(staging.launch_file, plan.to_dict())
                staging.logs_dir.mkdir()
                staging.logdir.mkdir()
                staging.write_snapshot(snapshot)
                images = sorted({str(s.container.get("image", "")) for s in job.replica_specs.values()})
                staging.add_event(
                    f"TFJob {job.name} created; image(s) {', '.join(images)} not pulled: "
                    "every replica runs its command as a local process"
                )
                try:
                    os.rename(staging.path, target.path)  # atomic: the name is claimed or it is not
                except OSError:
                    raise AlreadyExists(job.name, f"in namespace {self.namespace!r} (local)") from None
                journal.append(self.store.root, job.name, snapshot.resource_version)
            except BaseException:
                shutil.rmtree(staging.path, ignore_errors=True)
                raise
        try:
            self._start_supervisor(target)
        except BaseException:
            shutil.rmtree(target.path, ignore_errors=True)
            raise
        logger.info(
            "created TFJob %s/%s (local, %d replica(s), store %s)",
            self.namespace,
            job.name,
            len(plan.launches),
            target.path,
        )
        return snapshot

    def _initial_snapshot(self, job: TFJob) -> JobSnapshot:
        from ...tfjob.model import ANNOTATION_DESCRIPTION

        now = now_iso()
        replicas = [ReplicaState(type=t, index=i, pod_name=pod_name(job.name, t, i)) for t, i in job.replicas()]
        return JobSnapshot(
            name=job.name,
            namespace=self.namespace,
            backend=self.name,
            uid=str(uuid.uuid4()),
            created=now,
            conditions=rules.created_condition(job, now),
            replica_statuses=rules.replica_statuses(job, replicas),
            replicas=replicas,
            resource_version="1",
            description=str(
                ((job.manifest.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_DESCRIPTION, "")
            ),
        )

    def _start_supervisor(self, jobdir: JobDir) -> None:
        # The launcher forks the supervisor, records its pid and exits at once: the
        # supervisor is nobody's child here, so it outlives this kernel/CLI and never
        # lingers as our zombie.
        with open(jobdir.supervisor_log, "ab") as log:
            try:
                launcher = subprocess.run(
                    [sys.executable, "-m", "kubeflow_jupyter.backends.local.supervisor", str(jobdir.path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    timeout=SUPERVISOR_START_TIMEOUT,
                )
            except (OSError, subprocess.TimeoutExpired) as e:
                raise BackendError(f"could not start the local supervisor: {e}") from None
        if launcher.returncode != 0 or jobdir.read_supervisor() is None:
            raise BackendError(f"could not start the local supervisor (see {jobdir.supervisor_log})")

    # -- read ----------------------------------------------------------------------------
    def _jobdir(self, name: str) -> JobDir:
        jobdir = self.store.job(name)
        if jobdir is None or not jobdir.exists():
            raise JobNotFound(name, f"in namespace {self.namespace!r} (local)")
        return jobdir

    def _read(self, jobdir: JobDir) -> JobSnapshot:
        """The job's snapshot (Unknown when its status cannot be read); a job whose supervisor
        is gone while unfinished is marked Failed first."""
        try:
            snapshot = jobdir.read_snapshot()
        except FileNotFoundError:
            raise JobNotFound(jobdir.name, f"in namespace {self.namespace!r} (local)") from None
        except UNREADABLE as e:
            return unreadable_snapshot(jobdir, self.namespace, e)
        if not snapshot.finished and self._supervisor_alive(jobdir) is False:
            return record_supervisor_lost(jobdir, self.namespace, STOP_GRACE_SECONDS)
        return snapshot

    @staticmethod
    def _supervisor_alive(jobdir: JobDir) -> bool | None:
        """None while the supervisor is still being launched (no pid recorded yet)."""
        supervisor = jobdir.read_supervisor()
        return None if supervisor is None else is_alive(supervisor)

    def get(self, name: str) -> JobSnapshot:
        return self._read(self._jobdir(name))

    def list(self) -> list[JobSnapshot]:
        snapshots = []
        for jobdir in self.store.jobs():
            try:
                snapshots.append(self._read(jobdir))
            except JobNotFound:
                continue  # deleted while listing
        return sorted(snapshots, key=lambda s: (s.created, s.name), reverse=True)

    def manifest(self, name: str) -> dict:
        jobdir = self._jobdir(name)
        snapshot = self._read(jobdir)
        try:
            manifest = read_json(jobdir.manifest_file)
        except FileNotFoundError:
            raise JobNotFound(name, f"in namespace {self.namespace!r} (local)") from None
        except UNREADABLE as e:
            raise BackendError(
                f"cannot read {jobdir.manifest_file} ({e}): delete the job "
                f"(kubeflow-jupyter delete {name}) or restore the file"
            ) from None
        if not isinstance(manifest, dict):
            raise BackendError(
                f"{jobdir.manifest_file} does not hold a TFJob object: delete the job "
                f"(kubeflow-jupyter delete {name}) or restore the file"
            )
        manifest["status"] = snapshot.status_dict()
        return manifest

    def logdir(self, name: str) -> str:
        """The job's $TFJOB_LOGDIR: ``<job dir>/logdir``, deleted with the job."""
        return str(self._jobdir(name).logdir)

    def tensorboard(self, name: str):
        """A TensorBoard on the job's logdir, run by this process (once per job: asked again, the
        running one); it stops when the job is deleted from this process, or when it exits."""
        from ...metrics.tensorboard import manager

        return manager().start(name, self.logdir(name))

    def events(self, name: str) -> builtins.list[str]:
        """The runner's event log of one job (local only), oldest first."""
        return self._jobdir(name).read_events()

    # -- watch -------------------------------------------------------------------------------
    def watch(
        self, name: str | None = None, *, timeout: float | None = None, stop: Stop = None
    ) -> Iterator[JobSnapshot]:
        deadline = None if timeout is None else time.monotonic() + timeout
        if name is not None:
            yield from self._watch_one(self._jobdir(name), deadline, stop)
        else:
            yield from self._watch_all(deadline, stop)

    def _watch_one(self, jobdir: JobDir, deadline: float | None, stop: threading.Event | None) -> Iterator[JobSnapshot]:
        with JournalReader(self.store.root) as changes:  # opened before the first read: nothing is missed
            last_version = None
            lost_check = time.monotonic() + LOST_CHECK_SECONDS
            while True:
                try:
                    snapshot = self._read(jobdir)
                except JobNotFound:
                    raise JobNotFound(jobdir.name, f"in namespace {self.namespace!r} (local): it was deleted") from None
                if snapshot.resource_version != last_version:
                    last_version = snapshot.resource_version
                    yield snapshot
                    if snapshot.finished:
                        return
                while True:
                    named = changes.wait(_wait_time(deadline))
                    if _should_end(deadline, stop):
                        return
                    if named is RESCAN or jobdir.name in named:
                        break
                    if time.monotonic() >= lost_check:  # the supervisor gone with its watchdog
                        lost_check = time.monotonic() + LOST_CHECK_SECONDS
                        if self._supervisor_alive(jobdir) is False:
                            break

    def _watch_all(self, deadline: float | None, stop: threading.Event | None) -> Iterator[JobSnapshot]:
        versions: dict[str, str] = {}  # job name -> resourceVersion last yielded
        unfinished: set[str] = set()
        lost_check = time.monotonic() + LOST_CHECK_SECONDS
        with JournalReader(self.store.root) as changes:  # opened before the first read: nothing is missed
            names = [jobdir.name for jobdir in self.store.jobs()]
            while True:
                for name in names:
                    jobdir = self.store.job(name)
                    if jobdir is None:
                        continue  # not a job's name (the journal is only a hint)
                    try:
                        snapshot = self._read(jobdir)
                    except JobNotFound:
                        versions.pop(name, None)
                        unfinished.discard(name)
                        continue  # deleted
                    (unfinished.discard if snapshot.finished else unfinished.add)(name)
                    if versions.get(name) != snapshot.resource_version:
                        versions[name] = snapshot.resource_version
                        yield snapshot
                named = changes.wait(_wait_time(deadline))
                if _should_end(deadline, stop):
                    return
                if named is RESCAN:
                    logger.debug("journal of %s replaced or unreadable: re-reading every job", self.store.root)
                    names = [jobdir.name for jobdir in self.store.jobs()]
                    continue
                names = sorted(named)
                if unfinished and time.monotonic() >= lost_check:  # supervisors gone with their watchdogs
                    lost_check = time.monotonic() + LOST_CHECK_SECONDS
                    names += [
                        n
                        for n in sorted(unfinished - named.keys())
                        if (jd := self.store.job(n)) is not None and self._supervisor_alive(jd) is False
                    ]

    # -- logs ----------------------------------------------------------------------------------
    def _replica_id(self, snapshot: JobSnapshot, replica: str | None) -> str:
        if replica is None:
            default = snapshot.default_replica
            if default is None:
                raise ReplicaNotFound(f"TFJob {snapshot.name!r} has no replicas, hence no logs")
            return default
        if snapshot.replica(replica) is None:
            known = ", ".join(r.id for r in snapshot.replicas) or "none"
            raise ReplicaNotFound(f"TFJob {snapshot.name!r} has no replica {replica!r} (replicas: {known})")
        return replica

    def logs(
        self, name: str, replica: str | None = None, *, follow: bool = False, tail: int | None = None, stop: Stop = None
    ) -> Iterator[str]:
        jobdir = self._jobdir(name)
        rid = self._replica_id(self._read(jobdir), replica)
        return self._log_lines(jobdir, rid, follow, tail, stop)

    def _log_lines(
        self, jobdir: JobDir, rid: str, follow: bool, tail: int | None, stop: threading.Event | None
    ) -> Iterator[str]:
        path = jobdir.log_file(rid)
        while not path.exists():  # a replica not started yet has no log
            if not follow or self._replica_done(jobdir, rid) or _stopped_after_pause(stop):
                return
        with open(path, "rb") as f:
            # Following, a last line without its newline is still being written: it waits for its end.
            partial = b""

            def written() -> Iterator[str]:
                nonlocal partial
                for raw in f:
                    if follow and not raw.endswith(b"\n"):
                        partial = raw
                    else:
                        yield _log_line(raw)

            yield from written() if tail is None else deque(written(), maxlen=max(tail, 0))
            if not follow:
                return
            while not (stop is not None and stop.is_set()):
                chunk = f.readline()
                if chunk:
                    partial += chunk
                    if partial.endswith(b"\n"):
                        yield _log_line(partial)
                        partial = b""
                    continue
                if self._replica_done(jobdir, rid):
                    # Nothing more will come: the rest, split as the file is, an unfinished last line included.
                    yield from (_log_line(raw) for raw in io.BytesIO(partial + f.read()))
                    return
                if _stopped_after_pause(stop):
                    return

    def _replica_done(self, jobdir: JobDir, rid: str) -> bool:
        """Following ends when the replica has ended for good, the job has finished, or it is gone."""
        try:
            snapshot = self._read(jobdir)
        except JobNotFound:
            return True
        state = snapshot.replica(rid)
        return snapshot.finished or state is None or state.phase in ENDED_PHASES

    # -- delete ----------------------------------------------------------------------------------
    def delete(self, name: str) -> None:
        jobdir = self._jobdir(name)
        try:
            tombstone = jobdir.remove()  # gone for every reader at once
        except FileNotFoundError:
            raise JobNotFound(name, f"in namespace {self.namespace!r} (local)") from None
        _stop_tensorboard(name, jobdir.logdir)
        supervisor = tombstone.read_supervisor()
        if supervisor is not None and is_alive(supervisor):
            # The supervisor stops its replicas on SIGTERM; give it the time to, then sweep.
            stop_groups([supervisor], grace=DELETE_GRACE_SECONDS)
        stop_groups(list(tombstone.read_pids().values()))
        shutil.rmtree(tombstone.path, ignore_errors=True)
        logger.info("deleted TFJob %s/%s (local)", self.namespace, name)


def _stop_tensorboard(name: str, logdir: Path) -> None:
    """Stop the TensorBoard this process runs on the deleted job's logdir (not one of a job of the
    same name in another namespace)."""
    module = sys.modules.get("kubeflow_jupyter.metrics.tensorboard")
    if module is None:  # no TensorBoard was ever started here
        return
    board = module.manager().get(name)
    if board is not None and board.logdir == str(logdir.resolve()):
        module.manager().stop(name)


def _log_line(raw: bytes) -> str:
    return raw.decode(errors="replace").removesuffix("\n")


def _wait_time(deadline: float | None) -> float:
    """How long a watch may block for the next change before it looks at stop/deadline again."""
    if deadline is None:
        return STOP_CHECK_SECONDS
    return max(0.0, min(STOP_CHECK_SECONDS, deadline - time.monotonic()))


def _should_end(deadline: float | None, stop: threading.Event | None) -> bool:
    return (stop is not None and stop.is_set()) or (deadline is not None and time.monotonic() >= deadline)


def _stopped_after_pause(stop: threading.Event | None) -> bool:
    """Sleep one WATCH_INTERVAL, waking early when ``stop`` is set; True if it was."""
    if stop is None:
        time.sleep(WATCH_INTERVAL)
        return False
    return stop.wait(WATCH_INTERVAL)
