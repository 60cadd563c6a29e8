"""training-operator 1.9's status rules as pure functions (in progress).

Signatures are fixed; bodies land shortly.
"""

from __future__ import annotations

from .model import TFJob
from .status import Condition, ReplicaState


def is_retryable_exit_code(exit_code: int) -> bool:
    """ExitCode policy: 128+ (signals, OOM kill) is retryable; 1-127 is permanent."""
    raise NotImplementedError


def should_restart(restart_policy: str, exit_code: int) -> bool:
    """Whether a replica that exited with ``exit_code`` is started again under ``restart_policy``."""
    raise NotImplementedError


def set_condition(conditions: list[Condition], type_: str, reason: str, message: str, now: str | None = None) -> list[Condition]:
    """New condition list after the operator's ``updateJobConditions`` (Running/Restarting exclusive,
    Running kept with status False on Succeeded/Failed, nothing changes once Failed)."""
    raise NotImplementedError


def replica_statuses(job: TFJob, replicas: list[ReplicaState]) -> dict[str, dict]:
    """``status.replicaStatuses`` ({type: {active, succeeded, failed}}) from the replicas' phases."""
    raise NotImplementedError


def reconcile(job: TFJob, replicas: list[ReplicaState], conditions: list[Condition], *,
              restarts_total: int = 0, started_at: str | None = None, now: str | None = None):
    """One pass of the operator's ``UpdateJobStatus`` + run-policy checks.

    Returns ``(conditions, replica_statuses, finished_state_or_None)``.
    """
    raise NotImplementedError
