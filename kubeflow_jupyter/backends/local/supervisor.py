"""The per-job supervisor: runs a TFJob's replicas as local processes, following the operator's rules.

Started detached by :class:`LocalBackend` (``python -m kubeflow_jupyter.backends.local.supervisor
<jobdir>``): the launcher forks, records the child's pid and exits, so the supervisor
belongs to no kernel, terminal or CLI and outlives whatever submitted the job.

It runs the job as the backend planned it (``launch.json``, a :class:`.plan.JobPlan`:
every replica's argv, working directory, environment with the operator's TF_CONFIG, and
port; the job's restart and run policies) and never parses the spec again. It is the
only writer of the job's ``status.json`` while it lives. It

- starts every replica in its own session (process group), stdout+stderr to its log file;
- on each exit applies the replica's restartPolicy (``tfjob.rules``): OnFailure/Always
  restart in place (restarts counted, like a container restart), ExitCode recreates
  the replica (the operator deletes the pod), Never ends it; until a replica runs again
  the job is Restarting; restarts back off 0.2 s, 0.4 s, … up to 10 s (kubelet: 10 s … 5 min);
- enforces backoffLimit and activeDeadlineSeconds, sets the conditions;
- when the job has finished, stops every replica process still running (parameter
  servers and workers block in ``server.join()`` forever) and marks them Stopped:
  on a cluster cleanPodPolicy None would keep those pods, but a laptop should not
  keep stray TensorFlow servers; their logs are kept;
- on SIGTERM (``delete``) stops every replica and exits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ...errors import JobNotFound, StoreNotWritable
from ...tfjob import rules
from ...tfjob.status import (
    FAILED,
    PENDING,
    POD_FAILED,
    POD_RUNNING,
    POD_SUCCEEDED,
    STOPPED,
    JobSnapshot,
    ReplicaState,
    now_iso,
)
from .lost import record_supervisor_lost
from .plan import JobPlan, ReplicaLaunch
from .processes import JOB_MARKER, ProcessId, exit_code_of, kill_marked, killed_with_parent, stop_groups
from .store import JobDir, read_json, write_json_atomic

logger = logging.getLogger(__name__)

LOG_PREFIX = "[kubeflow-jupyter]"
RESTART_BACKOFF_FIRST, RESTART_BACKOFF_MAX = 0.2, 10.0
# Without pidfd support, how often exits are checked (pidfds wake the loop at once).
POLL_FALLBACK_SECONDS = 0.05
# How long the watchdog lets a lost supervisor's replicas end on SIGTERM before SIGKILL.
WATCHDOG_STOP_GRACE = 1.0
# How often the supervisor looks whether its job's directory still exists. (inotify cannot tell
# in time: a directory whose files its replicas hold open reports its deletion only once they exit.)
GONE_POLL_SECONDS = 1.0


class JobDeleted(Exception):
    """The job's directory disappeared under the supervisor: it was deleted."""


def restart_backoff(restarts: int) -> float:
    return min(RESTART_BACKOFF_FIRST * 2 ** max(restarts - 1, 0), RESTART_BACKOFF_MAX)


class Supervisor:
    def __init__(self, jobdir: JobDir):
        self.dir = jobdir
        plan = JobPlan.from_dict(read_json(jobdir.launch_file))
        self.job = plan.job()
        self.launches: dict[str, ReplicaLaunch] = {launch.id: launch for launch in plan.launches}
        self.snapshot: JobSnapshot = jobdir.read_snapshot()
        self.procs: dict[str, subprocess.Popen] = {}
        self.pidfds: dict[str, int] = {}
        self.restart_due: dict[str, float] = {}  # replica id -> monotonic time of its next start
        self.deadline: float | None = None  # monotonic time of activeDeadlineSeconds
        self.stop_requested = False
        self.wakeup_r, self.wakeup_w = os.pipe()
        self.die_with_supervisor = killed_with_parent()

    def check_directory(self) -> None:
        """Raise JobDeleted once the job's directory is gone: removed behind the store's back
        (rm -rf, a temporary home cleaned up) is a delete too, and its replicas must not run on
        with nowhere to report."""
        if not self.dir.path.is_dir():
            raise JobDeleted(f"{self.dir.path} is gone")

    # -- bookkeeping -----------------------------------------------------------
    def replica(self, rid: str) -> ReplicaState:
        found = self.snapshot.replica(rid)
        assert found is not None, rid
        return found

    def write(self) -> None:
        self.snapshot.resource_version = str(int(self.snapshot.resource_version or 0) + 1)
        try:
            self.dir.write_snapshot(self.snapshot)
            write_json_atomic(self.dir.pids_file, {rid: ProcessId.of(p.pid).to_list() for rid, p in self.procs.items()})
        except FileNotFoundError:
            raise JobDeleted() from None

    def event(self, message: str) -> None:
        try:
            self.dir.add_event(message)
        except FileNotFoundError:
            raise JobDeleted() from None

    def update(self) -> str | None:
        """Apply the operator's status rules to the replicas' current phases; return the finished state.
        Replicas waiting for their restart (``restart_due``) make the job Restarting."""
        result = rules.update_job_status(
            self.job,
            self.snapshot.replicas,
            self.snapshot.conditions,
            start_time=self.snapshot.start_time,
            restarting=tuple(self.restart_due),
        )
        self.snapshot.conditions = result.conditions
        self.snapshot.replica_statuses = result.replica_statuses
        if result.finished:
            self.snapshot.completion_time = result.completion_time
        return result.finished

    # -- processes ---------------------------------------------------------------
    def spawn(self, rid: str) -> None:
        launch = self.launches[rid]
        replica = self.replica(rid)
        env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        env.setdefault("PYTHONUNBUFFERED", "1")  # log lines reach the log file as they are printed
        env.update(launch.env)
        env[JOB_MARKER] = self.snapshot.uid  # inherited by everything the replica starts: see watch_over
        log_path = self.dir.log_file(rid)
        with open(log_path, "ab") as log:
            if replica.restarts == 0:
                log.write(
                    f"{LOG_PREFIX} image {launch.image!r} is not pulled: running {json.dumps(launch.argv)} "
                    f"in {launch.cwd} as a local process\n".encode()
                )
            else:
                log.write(
                    f"{LOG_PREFIX} restart {replica.restarts} of {rid} "
                    f"(previous exit code {replica.exit_code})\n".encode()
                )
            log.flush()
            proc = subprocess.Popen(
                launch.argv,
                cwd=launch.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                preexec_fn=self.die_with_supervisor,
            )
        self.procs[rid] = proc
        with contextlib.suppress(AttributeError, OSError):  # no pidfd here: the loop falls back to short timeouts
            self.pidfds[rid] = os.pidfd_open(proc.pid)
        logger.info("started %s (pid %d) after %d restart(s)", rid, proc.pid, replica.restarts)
        replica.phase = POD_RUNNING
        replica.started_at = now_iso()
        replica.finished_at = None
        replica.message = ""

    def forget(self, rid: str) -> None:
        self.procs.pop(rid, None)
        fd = self.pidfds.pop(rid, None)
        if fd is not None:
            os.close(fd)

    def stop_all(self, message: str) -> list[str]:
        """Stop every replica process and pending restart; mark those replicas Stopped."""
        stopped = sorted(set(self.procs) | set(self.restart_due))
        stop_groups([ProcessId.of(p.pid) for p in self.procs.values()])
        for rid, proc in list(self.procs.items()):
            proc.wait()
            replica = self.replica(rid)
            replica.exit_code = exit_code_of(proc.returncode)
            self.forget(rid)
        for rid in stopped:
            replica = self.replica(rid)
            replica.phase = STOPPED
            replica.finished_at = now_iso()
            replica.message = message
        self.restart_due.clear()
        return stopped

    # -- events --------------------------------------------------------------------
    def on_exit(self, rid: str, returncode: int) -> None:
        """Record one replica's exit: ended, or due to start again (in ``restart_due``: the job is Restarting)."""
        self.forget(rid)
        code = exit_code_of(returncode)
        replica = self.replica(rid)
        policy = self.job.replica_specs[replica.type].restart_policy
        replica.exit_code = code
        outcome = rules.exit_outcome(policy, code)
        if outcome != rules.RESTART:
            replica.phase = POD_SUCCEEDED if outcome == rules.EXIT_SUCCEEDED else POD_FAILED
            replica.finished_at = now_iso()
            logger.info("%s exited with code %d: %s (restartPolicy %s)", rid, code, outcome.lower(), policy)
            self.event(f"{rid} exited with code {code}: {outcome.lower()} (restartPolicy {policy})")
            return
        replica.restarts += 1
        delay = restart_backoff(replica.restarts)
        self.restart_due[rid] = time.monotonic() + delay
        replica.message = f"exited with code {code}; restarting in {delay:g}s (restartPolicy {policy})"
        logger.info(
            "%s exited with code %d: restart %d in %gs (restartPolicy %s)", rid, code, replica.restarts, delay, policy
        )
        self.event(f"{rid} exited with code {code}: restart {replica.restarts} in {delay:g}s (restartPolicy {policy})")
        if policy == "ExitCode":
            # The operator deletes the failed pod and creates a new one: Pending until it starts.
            replica.phase = PENDING
        # OnFailure/Always: restarted in place, the replica stays Running

    def reap(self) -> None:
        """Handle every replica that has exited."""
        for rid, proc in list(self.procs.items()):
            if proc.poll() is not None:
                self.on_exit(rid, proc.returncode)

    def start_due(self) -> None:
        now = time.monotonic()
        for rid, due in list(self.restart_due.items()):
            if due <= now:
                del self.restart_due[rid]
                self.spawn(rid)

    def wait_for_change(self) -> None:
        """Sleep until a replica exits, a restart is due, the deadline passes or a signal arrives;
        meanwhile, every GONE_POLL_SECONDS, make sure the job's directory is still there."""
        now = time.monotonic()
        wakeups = list(self.restart_due.values())
        if self.deadline is not None:
            wakeups.append(self.deadline if now < self.deadline else now + 0.1)
        if len(self.pidfds) < len(self.procs):
            wakeups.append(now + POLL_FALLBACK_SECONDS)
        until = min(wakeups) if wakeups else None
        while True:
            left = GONE_POLL_SECONDS if until is None else max(until - time.monotonic(), 0.0)
            readable, _, _ = select.select([self.wakeup_r, *self.pidfds.values()], [], [], min(left, GONE_POLL_SECONDS))
            if readable or (until is not None and time.monotonic() >= until):
                break
            self.check_directory()
        if self.wakeup_r in readable:
            os.read(self.wakeup_r, 512)

    # -- the job -----------------------------------------------------------------------
    def request_stop(self, signum, frame) -> None:
        self.stop_requested = True

    def start(self) -> None:
        self.snapshot.start_time = now_iso()
        if self.job.run_policy.active_deadline_seconds is not None:
            self.deadline = time.monotonic() + self.job.run_policy.active_deadline_seconds
        self.event(
            "starting replicas: "
            + ", ".join(f"{rid} on localhost:{launch.port}" for rid, launch in self.launches.items())
        )
        for rid in self.launches:
            self.spawn(rid)

    def finish(self, state: str) -> None:
        stopped = self.stop_all("stopped by the local runner: the job has finished")
        # Count what really runs now: stopped processes are neither active, succeeded nor failed.
        self.snapshot.replica_statuses = rules.replica_statuses(self.job, self.snapshot.replicas)
        if stopped:
            self.event(
                f"job {state}: stopped {len(stopped)} replica process(es) still running ({', '.join(stopped)}); "
                "the local runner leaves no processes behind (on a cluster cleanPodPolicy decides), logs are kept"
            )
        else:
            self.event(f"job {state}")
        logger.info("job %s; stopped %d replica process(es) still running", state, len(stopped))
        self.write()

    def expire_after_ttl(self) -> None:
        """``runPolicy.ttlSecondsAfterFinished``: as the operator does, delete the finished job
        (its status, events and logs) that many seconds after it finished; without it the job
        stays until deleted. The supervisor waits (asleep) for that moment, or for a delete."""
        ttl = self.job.run_policy.ttl_seconds_after_finished
        if ttl is None:
            return
        self.event(f"deleting the job in {ttl}s (runPolicy.ttlSecondsAfterFinished)")
        due = time.monotonic() + ttl
        while not self.stop_requested and (left := due - time.monotonic()) > 0:
            readable, _, _ = select.select([self.wakeup_r], [], [], min(left, GONE_POLL_SECONDS))
            if self.wakeup_r in readable:
                os.read(self.wakeup_r, 512)
            try:
                self.check_directory()
            except JobDeleted:
                return  # removed meanwhile, by hand
        if self.stop_requested:
            return  # deleted meanwhile
        logger.info("deleting the job: ttlSecondsAfterFinished (%ss) has passed", ttl)
        try:
            tombstone = self.dir.remove()
        except (FileNotFoundError, StoreNotWritable):
            return
        shutil.rmtree(tombstone.path, ignore_errors=True)

    def run(self) -> None:
        os.set_blocking(self.wakeup_w, False)
        signal.set_wakeup_fd(self.wakeup_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the submitting terminal is not for us
        try:
            if self.job.run_policy.suspend:
                self.update()
                self.write()
                self.event("job is suspended: no replica started")
                while not self.stop_requested:
                    self.wait_for_change()
                return
            self.start()
            while True:
                if self.stop_requested:
                    logger.info("the job was deleted: stopping its replicas")
                    self.stop_all("stopped by the local runner: the job was deleted")
                    return
                finished = self.update()
                if finished:
                    self.finish(finished)
                    self.expire_after_ttl()
                    return
                self.write()
                self.wait_for_change()
                self.reap()
                self.start_due()
        except JobDeleted:
            logger.info("the job's directory is gone (deleted): stopping its replicas")
            self.stop_all("stopped: the job was deleted")
        except Exception as e:  # a bug here must not leave the job Running forever
            self.stop_all("stopped: the local supervisor failed")
            self.snapshot.conditions = rules.set_condition(
                self.snapshot.conditions, FAILED, "SupervisorError", f"the local supervisor failed: {e!r}"
            )
            self.snapshot.completion_time = now_iso()
            try:
                self.event(f"supervisor error: {e!r}")
                self.write()
            except JobDeleted:
                pass
            raise


def launch_detached(jobdir: Path) -> int:
    """Fork; the parent records the child's pid and returns (and the caller's process exits)."""
    child = os.fork()
    if child == 0:
        os.setsid()
        return 0
    write_json_atomic(JobDir(jobdir).supervisor_file, ProcessId.of(child).to_list())
    return child


def watch_over(jobdir: JobDir, supervisor_alive: int) -> None:
    """The watchdog: a small child of the supervisor that outlives it by a moment.

    It blocks reading a pipe whose other end only the supervisor holds. When the
    supervisor ends, however it ends (SIGKILL included), the read returns; then, if
    the job had not finished, it stops every replica's process group and marks the
    job Failed (SupervisorLost) at once, without waiting for a reader. Last, anything
    still carrying the job's marker in its environment is killed: a process a replica
    started in a session of its own, or a replica started the instant before the
    supervisor could record it. A delete signals the supervisor's process group, which
    includes this process: the supervisor then stops the replicas itself.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        uid = jobdir.read_snapshot().uid
        while os.read(supervisor_alive, 1):
            pass
        # A finished job is left as it is; a deleted one has no record, but the marker sweep below still runs.
        with contextlib.suppress(JobNotFound):
            record_supervisor_lost(jobdir, jobdir.path.parent.name, WATCHDOG_STOP_GRACE)
        kill_marked(f"{JOB_MARKER}={uid}")
    finally:
        os._exit(0)


def main(argv: list[str]) -> int:
    jobdir = JobDir(Path(argv[0]))
    if launch_detached(jobdir.path):
        os._exit(0)  # the launcher: the supervisor now runs on its own
    # stderr is the job's supervisor.log: what the supervisor did, for whoever debugs the runner
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    alive_r, alive_w = os.pipe()  # not inherited by the replicas (close_fds, O_CLOEXEC)
    if os.fork() == 0:
        os.close(alive_w)
        watch_over(jobdir, alive_r)
    os.close(alive_r)
    Supervisor(jobdir).run()  # alive_w closes when this process ends: the watchdog wakes
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
