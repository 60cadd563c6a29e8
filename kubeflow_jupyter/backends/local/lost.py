"""What happens to a job whose supervisor died before the job finished.

Its watchdog (see :mod:`.supervisor`) notices at once and calls
:func:`record_supervisor_lost`; any reader that finds the supervisor gone does the
same (the watchdog may have died too, e.g. with the machine). Both stop every
replica still running and mark the job Failed (reason SupervisorLost), under the
job's lock so the first one wins. In a store this process cannot write, the
Failed state is only computed, so a reader still sees the truth.
"""

from __future__ import annotations

import logging

from ...errors import JobNotFound
from ...tfjob import rules
from ...tfjob.status import FAILED, PENDING, POD_RUNNING, STOPPED, JobSnapshot, now_iso
from .processes import stop_groups
from .store import NOT_WRITABLE, UNREADABLE, JobDir, unreadable_snapshot

REASON = "SupervisorLost"

logger = logging.getLogger(__name__)


def lost_state(jobdir: JobDir, snapshot: JobSnapshot) -> JobSnapshot:
    """``snapshot`` turned Failed because its supervisor is gone (a new version of it)."""
    supervisor = jobdir.read_supervisor()
    message = (
        f"the local supervisor (pid {supervisor.pid if supervisor else '?'}) exited "
        f"unexpectedly; its replica processes were stopped (see {jobdir.supervisor_log})"
    )
    snapshot.conditions = rules.set_condition(snapshot.conditions, FAILED, REASON, message)
    snapshot.completion_time = now_iso()
    for replica in snapshot.replicas:
        if replica.phase in (POD_RUNNING, PENDING) and snapshot.start_time:
            replica.phase = STOPPED
            replica.message = "stopped: the local supervisor was lost"
            replica.finished_at = snapshot.completion_time
    snapshot.resource_version = str(int(snapshot.resource_version or 0) + 1)
    return snapshot


def record_supervisor_lost(jobdir: JobDir, namespace: str, stop_grace: float) -> JobSnapshot:
    """Stop the job's recorded replicas and mark it Failed; returns the job's state after that.

    Raises JobNotFound when the job is gone."""
    try:
        try:
            return _record(jobdir, stop_grace)
        except OSError as e:
            if e.errno not in NOT_WRITABLE:
                raise
            # A store this process cannot write: what a writer would record, without recording it.
            snapshot = jobdir.read_snapshot()
            return snapshot if snapshot.finished else lost_state(jobdir, snapshot)
    except FileNotFoundError:
        raise JobNotFound(jobdir.name, f"in namespace {namespace!r} (local)") from None
    except UNREADABLE as e:
        return unreadable_snapshot(jobdir, namespace, e)


def _record(jobdir: JobDir, stop_grace: float) -> JobSnapshot:
    with jobdir.locked():
        snapshot = jobdir.read_snapshot()  # again: another reader may have done it, or the supervisor finished
        if snapshot.finished:
            return snapshot
        stop_groups(list(jobdir.read_pids().values()), grace=stop_grace)
        snapshot = lost_state(jobdir, snapshot)
        jobdir.write_snapshot(snapshot)
        jobdir.add_event(f"job Failed: {snapshot.message}")
        logger.info(
            "TFJob %s/%s: its supervisor is gone; replicas stopped, job marked Failed (%s)",
            jobdir.path.parent.name,
            jobdir.name,
            REASON,
        )
        return snapshot
