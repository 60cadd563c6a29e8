"""TFJob object + its pods (plain dicts as the API server sends them) → :class:`JobSnapshot`.

Pure functions: no client, no I/O.
"""

from __future__ import annotations

from ...tfjob import model
from ...tfjob.status import PENDING, Condition, JobSnapshot, ReplicaState

BACKEND_NAME = "kubernetes"
_CANONICAL = {t.lower(): t for t in model.REPLICA_TYPES}
_POD_PHASES = ("Pending", "Running", "Succeeded", "Failed")


def canonical_type(value: str) -> str:
    """``worker``/``Worker`` → ``Worker``, ``ps`` → ``PS`` (the operator normalises keys the same way)."""
    return _CANONICAL.get(value.lower(), value)


def spec_replicas(obj: dict) -> list[tuple[str, int]]:
    """Every ``(type, index)`` the spec asks for (``replicas`` defaults to 1), in the operator's type order."""
    specs = (obj.get("spec") or {}).get("tfReplicaSpecs") or {}
    out = []
    for key, spec in specs.items():
        count = (spec or {}).get("replicas")
        out += [(canonical_type(key), i) for i in range(1 if count is None else int(count))]
    order = {t: n for n, t in enumerate(model.REPLICA_TYPES)}
    return sorted(out, key=lambda r: (order.get(r[0], len(order)), r[1]))


def _container_status(pod: dict) -> dict:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == model.DEFAULT_CONTAINER:
            return cs
    return {}


def _pod_message(pod: dict, cs: dict) -> str:
    """Why a replica is where it is: a waiting reason, a termination reason, or unschedulable."""
    state = cs.get("state") or {}
    if "waiting" in state:
        w = state["waiting"] or {}
        return ": ".join(p for p in (w.get("reason"), w.get("message")) if p)
    if "terminated" in state:
        t = state["terminated"] or {}
        return ": ".join(p for p in (t.get("reason"), t.get("message")) if p)
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return ": ".join(p for p in (cond.get("reason"), cond.get("message")) if p)
    return status.get("message") or ""


def replica_state(rtype: str, index: int, job_name: str, pod: dict | None) -> ReplicaState:
    name = model.pod_name(job_name, rtype, index)
    if pod is None:
        return ReplicaState(rtype, index, PENDING, pod_name=name)
    status = pod.get("status") or {}
    cs = _container_status(pod)
    terminated = (cs.get("state") or {}).get("terminated") or {}
    phase: str = status["phase"] if status.get("phase") in _POD_PHASES else PENDING
    return ReplicaState(
        type=rtype,
        index=index,
        phase=phase,
        restarts=int(cs.get("restartCount") or 0),
        exit_code=terminated.get("exitCode"),
        started_at=status.get("startTime"),
        finished_at=terminated.get("finishedAt"),
        pod_name=pod.get("metadata", {}).get("name", name),
        message=_pod_message(pod, cs),
    )


def _pick_pod(candidates: list[dict]) -> dict | None:
    """After an ExitCode restart the old pod may linger while terminating: prefer the newest live one."""
    live = [p for p in candidates if not p["metadata"].get("deletionTimestamp")] or candidates
    return max(live, key=lambda p: p["metadata"].get("creationTimestamp") or "", default=None)


def build_snapshot(obj: dict, pods: list[dict]) -> JobSnapshot:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    by_replica: dict[tuple[str, int], list[dict]] = {}
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        try:
            key = (canonical_type(labels[model.LABEL_REPLICA_TYPE]), int(labels[model.LABEL_REPLICA_INDEX]))
        except (KeyError, ValueError):
            continue
        by_replica.setdefault(key, []).append(pod)
    return JobSnapshot(
        name=meta.get("name", ""),
        namespace=meta.get("namespace") or model.DEFAULT_NAMESPACE,
        backend=BACKEND_NAME,
        uid=meta.get("uid") or "",
        created=meta.get("creationTimestamp") or "",
        conditions=[Condition.from_dict(c) for c in status.get("conditions") or []],
        replica_statuses={
            k: {n: int((v or {}).get(n) or 0) for n in ("active", "succeeded", "failed")}
            for k, v in (status.get("replicaStatuses") or {}).items()
        },
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
        replicas=[
            replica_state(t, i, meta.get("name", ""), _pick_pod(by_replica.get((t, i), [])))
            for t, i in spec_replicas(obj)
        ],
        resource_version=str(meta.get("resourceVersion") or ""),
        description=str((meta.get("annotations") or {}).get(model.ANNOTATION_DESCRIPTION) or ""),
    )


def snapshot_key(snapshot: JobSnapshot) -> dict:
    """What a user can see change: everything but the resourceVersion."""
    d = snapshot.to_dict()
    d.pop("resourceVersion", None)
    return d
