"""The status model every backend produces and every front end shows.

``JobSnapshot.status_dict()`` is exactly the TFJob ``.status`` the operator
writes (conditions, replicaStatuses, startTime, completionTime); the per-replica
list is what ``kubectl get pods -l training.kubeflow.org/job-name=...`` would add.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from .model import CHIEF_TYPES, DEFAULT_NAMESPACE, replica_id

# Condition types and the operator's reasons (training-operator 1.9, TFJob).
CREATED, RUNNING, RESTARTING, SUCCEEDED, FAILED, SUSPENDED = (
    "Created",
    "Running",
    "Restarting",
    "Succeeded",
    "Failed",
    "Suspended",
)
FINISHED_STATES = (SUCCEEDED, FAILED)
#: The state of a job whose stored status cannot be read (``JobSnapshot.problem`` says why).
UNKNOWN = "Unknown"

# Replica phases: a pod's phases, plus "Stopped": the local runner ended the replica because
# its job had finished, was deleted or lost its supervisor (on a cluster such a pod is deleted,
# or kept running: cleanPodPolicy). Every front end (CLI, widget, sidebar) shows these.
PENDING, POD_RUNNING, POD_SUCCEEDED, POD_FAILED, STOPPED = "Pending", "Running", "Succeeded", "Failed", "Stopped"
REPLICA_PHASES = (PENDING, POD_RUNNING, POD_SUCCEEDED, POD_FAILED, STOPPED)
#: Phases after which a replica runs no more (the rest are active).
ENDED_PHASES = (POD_SUCCEEDED, POD_FAILED, STOPPED)


def now_iso() -> str:
    """RFC 3339 UTC timestamp, second precision, like the API server writes."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_duration(seconds: float) -> str:
    """kubectl's short age style: ``42s``, ``5m``, ``3m12s``, ``2h``, ``4d``.

    The one age format: the CLI, the tables, the widget (and ``formatAge`` in the lab
    extension, which mirrors it) all show this."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 10:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes}m" if minutes and hours < 10 else f"{hours}h"
    return f"{hours // 24}d"


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """Time since an RFC 3339 timestamp, or ``-`` when unknown."""
    when = parse_iso(timestamp)
    if when is None:
        return "-"
    now = now or datetime.now(UTC)
    return format_duration((now - when).total_seconds())


def default_replica_id(replicas: list[tuple[str, int]]) -> str | None:
    """The replica users mean by default (its log, its result): the chief/master, else worker 0,
    else the first. The operator picks the job's master role the same way."""
    for rtype, index in replicas:
        if rtype in CHIEF_TYPES and index == 0:
            return replica_id(rtype, index)
    if ("Worker", 0) in replicas:
        return replica_id("Worker", 0)
    return replica_id(*replicas[0]) if replicas else None


@dataclass
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str = ""
    message: str = ""
    lastUpdateTime: str = ""
    lastTransitionTime: str = ""

    @classmethod
    def from_dict(cls, d: dict) -> Condition:
        return cls(**{k: d.get(k, "") or "" for k in cls.__dataclass_fields__})


@dataclass
class ReplicaState:
    """One replica (a pod on a cluster, a process locally)."""

    type: str  # canonical CamelCase
    index: int
    phase: str = PENDING  # Pending | Running | Succeeded | Failed
    restarts: int = 0
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    pod_name: str = ""
    message: str = ""

    @property
    def id(self) -> str:
        return replica_id(self.type, self.index)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["id"] = self.id
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ReplicaState:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class JobSnapshot:
    """A point-in-time view of one TFJob, backend-independent."""

    name: str
    namespace: str = DEFAULT_NAMESPACE
    backend: str = "local"
    uid: str = ""
    created: str = ""  # metadata.creationTimestamp
    conditions: list[Condition] = field(default_factory=list)
    replica_statuses: dict[str, dict] = field(default_factory=dict)  # {"Worker": {"active":1,"succeeded":0,"failed":0}}
    start_time: str | None = None
    completion_time: str | None = None
    replicas: list[ReplicaState] = field(default_factory=list)
    resource_version: str = ""
    #: why the job's stored state cannot be read (a corrupt file): the job then shows as Unknown
    problem: str = ""
    #: what a run-job runs (the code's first line, or the call); "" for a submitted job
    description: str = ""

    # -- derived views -------------------------------------------------
    def condition(self, type_: str) -> Condition | None:
        for c in self.conditions:
            if c.type == type_:
                return c
        return None

    @property
    def state(self) -> str:
        """The job's state: Failed/Succeeded win, else the latest condition that is True."""
        if self.problem:
            return UNKNOWN
        for t in (FAILED, SUCCEEDED, SUSPENDED):
            c = self.condition(t)
            if c and c.status == "True":
                return t
        true = [c for c in self.conditions if c.status == "True"]
        if not true:
            return "Pending" if not self.conditions else self.conditions[-1].type
        return max(true, key=lambda c: (c.lastTransitionTime or "", self.conditions.index(c))).type

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def message(self) -> str:
        if self.problem:
            return self.problem
        c = self.condition(self.state)
        return c.message if c else ""

    @property
    def default_replica(self) -> str | None:
        return default_replica_id([(r.type, r.index) for r in self.replicas])

    def replica(self, rid: str) -> ReplicaState | None:
        for r in self.replicas:
            if r.id == rid:
                return r
        return None

    def counts(self) -> dict[str, int]:
        """Totals over all replica types: active, succeeded, failed, total."""
        out = {"active": 0, "succeeded": 0, "failed": 0}
        for s in self.replica_statuses.values():
            for k in out:
                out[k] += int(s.get(k, 0) or 0)
        out["total"] = len(self.replicas)
        return out

    @property
    def version_counter(self) -> int | None:
        """The resourceVersion as a number where it is one: the local store counts each job's
        writes (1, 2, 3, ...). The Kubernetes API's is opaque (compare it only for equality)."""
        if self.backend == "local" and self.resource_version.isdigit():
            return int(self.resource_version)
        return None

    # -- serialisation -------------------------------------------------
    def status_dict(self) -> dict:
        """The TFJob ``.status`` object exactly as the operator writes it."""
        d: dict = {
            "conditions": [asdict(c) for c in self.conditions],
            "replicaStatuses": {k: dict(v) for k, v in self.replica_statuses.items()},
        }
        if self.start_time:
            d["startTime"] = self.start_time
        if self.completion_time:
            d["completionTime"] = self.completion_time
        return d

    def to_dict(self) -> dict:
        """JSON form used by the REST API, the CLI's ``-o json`` and the local store."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "backend": self.backend,
            "uid": self.uid,
            "created": self.created,
            "state": self.state,
            "message": self.message,
            "resourceVersion": self.resource_version,
            "status": self.status_dict(),
            "replicas": [r.to_dict() for r in self.replicas],
            **({"description": self.description} if self.description else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> JobSnapshot:
        st = d.get("status") or {}
        return cls(
            name=d["name"],
            namespace=d.get("namespace") or DEFAULT_NAMESPACE,
            backend=d.get("backend") or "local",
            uid=d.get("uid") or "",
            created=d.get("created") or "",
            conditions=[Condition.from_dict(c) for c in st.get("conditions") or []],
            replica_statuses={k: dict(v) for k, v in (st.get("replicaStatuses") or {}).items()},
            start_time=st.get("startTime"),
            completion_time=st.get("completionTime"),
            replicas=[ReplicaState.from_dict(r) for r in d.get("replicas") or []],
            resource_version=str(d.get("resourceVersion") or ""),
            description=str(d.get("description") or ""),
        )


def supersedes(new: JobSnapshot, old: JobSnapshot | None) -> bool:
    """Whether ``new`` is a newer state of its job than ``old``, the newest seen so far.

    Every consumer of job state keeps only what this lets through, so a late update
    (a submit's first snapshot arriving after the watch's, a resync's list taken
    before a change) never turns a job back to an older state. A job deleted and
    created again has another uid: its first state supersedes the old job's last.
    Counted versions (local) must grow; opaque ones (Kubernetes) arrive in the
    watch's order, which is the order.
    """
    if old is None or new.uid != old.uid:
        return True
    new_count, old_count = new.version_counter, old.version_counter
    if new_count is not None and old_count is not None:
        return new_count > old_count
    return True
