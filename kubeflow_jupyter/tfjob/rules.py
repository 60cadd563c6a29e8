"""training-operator 1.9's status rules for TFJobs, as pure functions.

Every backend that runs replicas itself (the local runner, the simulated operator in
the Kubernetes test fake) calls these, so a job behaves the same everywhere.
Sources of truth, training-operator release-1.9: ``pkg/controller.v1/tensorflow``
(UpdateJobStatus, IsWorker0Completed), ``pkg/controller.v1/common`` (ReconcileJobs,
PastBackoffLimit, PastActiveDeadline, ReconcilePods) and ``pkg/util`` (conditions).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

from .model import CHIEF_TYPES, DEFAULT_NAMESPACE, TFJob, replica_id
from .status import (
    CREATED,
    FAILED,
    POD_FAILED,
    POD_RUNNING,
    POD_SUCCEEDED,
    RESTARTING,
    RUNNING,
    SUCCEEDED,
    SUSPENDED,
    Condition,
    ReplicaState,
    now_iso,
    parse_iso,
)

KIND = "TFJob"

# What a replica's exit means under its restart policy.
RESTART, EXIT_SUCCEEDED, EXIT_FAILED = "Restart", "Succeeded", "Failed"


def reason(event: str) -> str:
    """The operator's condition reasons: ``TFJobCreated``, ``TFJobRunning``, …"""
    return f"{KIND}{event}"


def is_retryable_exit_code(exit_code: int) -> bool:
    """ExitCode policy: 128+ (killed by a signal, OOM) is retryable; 1-127 is permanent."""
    return exit_code >= 128


def should_restart(restart_policy: str, exit_code: int) -> bool:
    """Whether a replica that exited with ``exit_code`` is started again.

    Always restarts even after success (kubelet semantics for ``restartPolicy: Always``);
    OnFailure on any non-zero code; ExitCode only on retryable codes; Never never.
    """
    if restart_policy == "Always":
        return True
    if exit_code == 0:
        return False
    if restart_policy == "OnFailure":
        return True
    if restart_policy == "ExitCode":
        return is_retryable_exit_code(exit_code)
    return False


def exit_outcome(restart_policy: str, exit_code: int) -> str:
    """RESTART, EXIT_SUCCEEDED or EXIT_FAILED for a replica process/container that just exited."""
    if should_restart(restart_policy, exit_code):
        return RESTART
    return EXIT_SUCCEEDED if exit_code == 0 else EXIT_FAILED


# -- conditions --------------------------------------------------------------


def has_condition(conditions: list[Condition], type_: str) -> bool:
    return any(c.type == type_ and c.status == "True" for c in conditions)


def is_finished(conditions: list[Condition]) -> bool:
    return has_condition(conditions, SUCCEEDED) or has_condition(conditions, FAILED)


def set_condition(
    conditions: list[Condition],
    type_: str,
    reason_: str,
    message: str,
    now: str | None = None,
    status: str = "True",
) -> list[Condition]:
    """The operator's ``UpdateJobConditions``: a new list, the input is not mutated.

    - an identical condition (same type, status, reason, message) is left as it is;
    - Running and Restarting replace each other;
    - on Succeeded/Failed, Running stays with status "False";
    - once Failed, nothing changes any more (Failed is final).
    """
    if has_condition(conditions, FAILED):
        return list(conditions)
    now = now or now_iso()
    current = next((c for c in conditions if c.type == type_), None)
    if current and (current.status, current.reason, current.message) == (status, reason_, message):
        return list(conditions)
    transition = current.lastTransitionTime if current and current.status == status else now
    new = Condition(type_, status, reason_, message, lastUpdateTime=now, lastTransitionTime=transition)
    kept: list[Condition] = []
    for c in conditions:
        if c.type == type_:
            continue
        if {type_, c.type} == {RUNNING, RESTARTING}:
            continue
        if type_ in (SUCCEEDED, FAILED) and c.type == RUNNING and c.status != "False":
            c = replace(c, status="False", lastUpdateTime=now, lastTransitionTime=now)
        kept.append(c)
    return [*kept, new]


def created_condition(job: TFJob, now: str | None = None) -> list[Condition]:
    return set_condition([], CREATED, reason("Created"), f"TFJob {job.name} is created.", now)


# -- replica counts ------------------------------------------------------------


def replica_statuses(job: TFJob, replicas: list[ReplicaState]) -> dict[str, dict]:
    """``status.replicaStatuses`` from the replicas' phases, keyed by CamelCase type."""
    out = {t: {"active": 0, "succeeded": 0, "failed": 0} for t in job.replica_specs}
    for r in replicas:
        counts = out.setdefault(r.type, {"active": 0, "succeeded": 0, "failed": 0})
        if r.phase == POD_RUNNING:
            counts["active"] += 1
        elif r.phase == POD_SUCCEEDED:
            counts["succeeded"] += 1
        elif r.phase == POD_FAILED:
            counts["failed"] += 1
    return out


def worker0_completed(replicas: list[ReplicaState]) -> bool:
    return any(
        r.type == "Worker" and r.index == 0 and r.phase == POD_SUCCEEDED and (r.exit_code or 0) == 0 for r in replicas
    )


# -- run policy ----------------------------------------------------------------


def past_backoff_limit(job: TFJob, replicas: list[ReplicaState]) -> bool:
    """``PastBackoffLimit``: restarts of running OnFailure/Always replicas reach ``backoffLimit``."""
    limit = job.run_policy.backoff_limit
    if limit is None:
        return False
    total = sum(
        r.restarts
        for r in replicas
        if r.phase == POD_RUNNING
        and job.replica_specs.get(r.type) is not None
        and job.replica_specs[r.type].restart_policy in ("OnFailure", "Always")
    )
    return total > 0 if limit == 0 else total >= limit


def past_active_deadline(job: TFJob, start_time: str | None, now: str | None = None) -> bool:
    deadline = job.run_policy.active_deadline_seconds
    started, current = parse_iso(start_time), parse_iso(now or now_iso())
    if deadline is None or started is None or current is None:
        return False
    elapsed = (current - started).total_seconds()
    return elapsed >= deadline


def run_policy_failure(
    job: TFJob, replicas: list[ReplicaState], start_time: str | None, now: str | None = None
) -> str | None:
    """The failure message when the job exceeds its backoff limit or active deadline, else None."""
    if past_backoff_limit(job, replicas):
        return f"Job {job.name} has failed because it has reached the specified backoff limit"
    if past_active_deadline(job, start_time, now):
        return f"Job {job.name} has failed because it was active longer than specified deadline"
    return None


# -- the status update -----------------------------------------------------------


@dataclass(frozen=True)
class StatusUpdate:
    conditions: list[Condition]
    replica_statuses: dict[str, dict]
    finished: str | None  # SUCCEEDED, FAILED or None
    completion_time: str | None


def update_job_status(
    job: TFJob,
    replicas: list[ReplicaState],
    conditions: list[Condition],
    *,
    start_time: str | None = None,
    restarting: Collection[str] = (),
    now: str | None = None,
) -> StatusUpdate:
    """One pass of the operator's reconcile for a TFJob.

    ``replicas``: every replica's current phase. ``restarting``: the ids (``"worker-0"``)
    of the replicas waiting to be started again right now, under any restart policy
    (OnFailure/Always: the container restarts in place; ExitCode: the pod is recreated).
    While one is waiting the job is Restarting (reason ``TFJobRestarting``) instead of
    Running, and a failed replica that is waiting does not fail the job; once none is
    waiting, Running replaces Restarting. A finished job (Succeeded/Failed) still wins.
    """
    now = now or now_iso()
    statuses = replica_statuses(job, replicas)
    if is_finished(conditions):
        done = SUCCEEDED if has_condition(conditions, SUCCEEDED) else FAILED
        return StatusUpdate(list(conditions), statuses, done, now)

    if job.run_policy.suspend:
        conds = set_condition(conditions, SUSPENDED, reason("Suspended"), f"TFJob {job.name} is suspended.", now)
        return StatusUpdate(conds, statuses, None, None)

    ns_name = f"{job.namespace or DEFAULT_NAMESPACE}/{job.name}"
    conds = list(conditions)
    waiting = restarting_counts(job, restarting)

    failure = run_policy_failure(job, replicas, start_time, now)
    if failure:
        conds = set_condition(conds, FAILED, reason("Failed"), failure, now)
        return StatusUpdate(conds, statuses, FAILED, now)

    def running() -> None:
        nonlocal conds
        if not waiting:  # while a replica waits to run again, Restarting stands instead (set below)
            conds = set_condition(conds, RUNNING, reason("Running"), f"TFJob {ns_name} is running.", now)

    has_chief = any(t in job.replica_specs for t in CHIEF_TYPES)
    for rtype, spec in job.replica_specs.items():
        st = statuses[rtype]
        expected = spec.replicas - st["succeeded"]
        if has_chief:
            if rtype in CHIEF_TYPES:
                if st["active"] > 0:
                    running()
                if expected == 0:
                    conds = set_condition(
                        conds, SUCCEEDED, reason("Succeeded"), f"TFJob {ns_name} successfully completed.", now
                    )
        elif rtype == "Worker":
            all_workers = job.success_policy == "AllWorkers"
            if expected == 0 or (worker0_completed(replicas) and not all_workers):
                conds = set_condition(
                    conds, SUCCEEDED, reason("Succeeded"), f"TFJob {ns_name} successfully completed.", now
                )
            elif st["active"] > 0:
                running()
        # A failed replica fails the job unless it is the one waiting to be started again.
        failed = sum(1 for r in replicas if r.type == rtype and r.phase == POD_FAILED and r.id not in restarting)
        if failed > 0 and not has_condition(conds, SUCCEEDED):
            conds = set_condition(
                conds,
                FAILED,
                reason("Failed"),
                f"TFJob {ns_name} has failed because {failed} {rtype} replica(s) failed.",
                now,
            )

    if waiting and not is_finished(conds):
        counts = " and ".join(f"{n} {rtype}" for rtype, n in waiting.items())
        conds = set_condition(
            conds,
            RESTARTING,
            reason("Restarting"),
            f"TFJob {ns_name} is restarting because {counts} replica(s) failed.",
            now,
        )

    finished: str | None = (
        FAILED if has_condition(conds, FAILED) else SUCCEEDED if has_condition(conds, SUCCEEDED) else None
    )
    return StatusUpdate(conds, statuses, finished, now if finished else None)


def restarting_counts(job: TFJob, restarting: Collection[str]) -> dict[str, int]:
    """``{"Worker": 1}``: how many replicas of each type (in the spec's order) wait to run again."""
    ids = set(restarting)
    counts = {
        t: sum(1 for i in range(spec.replicas) if replica_id(t, i) in ids) for t, spec in job.replica_specs.items()
    }
    return {t: n for t, n in counts.items() if n}


def replicas_to_stop(job: TFJob, replicas: list[ReplicaState]) -> list[ReplicaState]:
    """Replicas ``cleanPodPolicy`` removes once the job has finished (All / Running; None keeps them)."""
    policy = job.run_policy.clean_pod_policy
    if policy == "All":
        return list(replicas)
    if policy == "Running":
        return [r for r in replicas if r.phase in (POD_RUNNING, "Pending")]
    return []
