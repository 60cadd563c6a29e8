"""Typed view of a validated ``kubeflow.org/v1`` TFJob (defaults applied).

The canonical form is the manifest dict (what the Kubernetes API takes);
:class:`TFJob` is a read-only view over it for the rest of the code.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

API_VERSION = "kubeflow.org/v1"
KIND = "TFJob"

#: Replica types in the operator's canonical spelling, in TF_CONFIG order.
REPLICA_TYPES = ("Chief", "Evaluator", "Master", "PS", "Worker")
CHIEF_TYPES = ("Chief", "Master")
RESTART_POLICIES = ("Always", "OnFailure", "Never", "ExitCode")
CLEAN_POD_POLICIES = ("All", "Running", "None")
SUCCESS_POLICIES = ("", "AllWorkers")

DEFAULT_CONTAINER = "tensorflow"
DEFAULT_PORT_NAME = "tfjob-port"
DEFAULT_PORT = 2222
DEFAULT_RESTART_POLICY = "Never"
DEFAULT_CLEAN_POD_POLICY = "None"
#: The namespace when none is given: Kubernetes' own default, and the local runner's.
DEFAULT_NAMESPACE = "default"

# Labels the operator puts on every pod (training-operator 1.9).
LABEL_JOB_NAME = "training.kubeflow.org/job-name"
LABEL_OPERATOR_NAME = "training.kubeflow.org/operator-name"
LABEL_REPLICA_TYPE = "training.kubeflow.org/replica-type"
LABEL_REPLICA_INDEX = "training.kubeflow.org/replica-index"
LABEL_JOB_ROLE = "training.kubeflow.org/job-role"
#: A run-job (``%%tfjob run``, ``TFJobClient.run``): what ran ("cell" or "function") and its first
#: line, which list views show as the job's description.
ANNOTATION_RUN = "kubeflow-jupyter.org/run"
ANNOTATION_DESCRIPTION = "kubeflow-jupyter.org/description"
#: Where the replicas write event files on a cluster: ``pvc://CLAIM/SUBPATH`` (``--logdir``), mounted
#: in every replica at LOGDIR_MOUNT; locally every job has its own logdir in the store.
ANNOTATION_LOGDIR = "kubeflow-jupyter.org/logdir"
#: The environment variable naming that directory in every replica (for ``tf.summary``, Keras's callback).
ENV_LOGDIR = "TFJOB_LOGDIR"
LOGDIR_VOLUME = "kfj-logdir"
LOGDIR_MOUNT = "/kfj/logdir"


def replica_id(replica_type: str, index: int) -> str:
    """``("Worker", 1)`` → ``"worker-1"``: how users name a replica (``--replica``)."""
    return f"{replica_type.lower()}-{index}"


def pod_name(job_name: str, replica_type: str, index: int) -> str:
    """The operator's pod (and service) name: ``<job>-<type lowercase>-<index>``."""
    return f"{job_name}-{replica_id(replica_type, index)}"


@dataclass(frozen=True)
class ReplicaSpec:
    type: str  # canonical CamelCase: Chief, Master, Worker, PS, Evaluator
    replicas: int
    restart_policy: str
    template: dict  # the pod template (metadata + spec), as in the manifest

    @property
    def container(self) -> dict:
        """The container named ``tensorflow`` (validation guarantees it exists)."""
        for c in self.template.get("spec", {}).get("containers", []):
            if c.get("name") == DEFAULT_CONTAINER:
                return c
        raise KeyError(DEFAULT_CONTAINER)

    @property
    def port(self) -> int:
        for p in self.container.get("ports") or []:
            if p.get("name") == DEFAULT_PORT_NAME:
                return int(p["containerPort"])
        return DEFAULT_PORT

    @property
    def command(self) -> list[str]:
        """``command`` + ``args`` of the tensorflow container (empty: image entrypoint)."""
        c = self.container
        return list(c.get("command") or []) + list(c.get("args") or [])

    @property
    def env(self) -> dict[str, str]:
        """Plain ``value`` env vars of the tensorflow container (``valueFrom`` is cluster-only)."""
        return {e["name"]: str(e.get("value", "")) for e in self.container.get("env") or [] if "value" in e}


@dataclass(frozen=True)
class RunPolicy:
    clean_pod_policy: str = DEFAULT_CLEAN_POD_POLICY
    backoff_limit: int | None = None
    active_deadline_seconds: int | None = None
    ttl_seconds_after_finished: int | None = None
    suspend: bool = False


@dataclass(frozen=True)
class TFJob:
    """A validated TFJob with the operator's defaults applied."""

    name: str
    namespace: str | None
    replica_specs: dict[str, ReplicaSpec]  # keyed by canonical type, in REPLICA_TYPES order
    run_policy: RunPolicy = field(default_factory=RunPolicy)
    success_policy: str = ""
    manifest: dict = field(default_factory=dict, repr=False)  # full kubeflow.org/v1 manifest

    @property
    def chief_type(self) -> str | None:
        """``"Chief"`` or ``"Master"`` when the job has one (with replicas > 0), else None."""
        for t in CHIEF_TYPES:
            if t in self.replica_specs and self.replica_specs[t].replicas > 0:
                return t
        return None

    @property
    def total_replicas(self) -> int:
        return sum(s.replicas for s in self.replica_specs.values())

    def replicas(self) -> list[tuple[str, int]]:
        """Every replica as ``(type, index)``, in a stable order."""
        return [(t, i) for t, s in self.replica_specs.items() for i in range(s.replicas)]

    def to_manifest(self) -> dict:
        """A deep copy of the ``kubeflow.org/v1`` manifest (safe to mutate)."""
        return copy.deepcopy(self.manifest)

    @property
    def logdir(self) -> str | None:
        """The ``kubeflow-jupyter.org/logdir`` annotation (``pvc://CLAIM/SUBPATH``), if any."""
        annotations = (self.manifest.get("metadata") or {}).get("annotations") or {}
        value = annotations.get(ANNOTATION_LOGDIR) if isinstance(annotations, dict) else None
        return str(value) if value else None

    def with_logdir(self, logdir: str) -> TFJob:
        """This job with its ``kubeflow-jupyter.org/logdir`` annotation set to ``logdir``."""
        manifest = self.to_manifest()
        metadata = manifest.setdefault("metadata", {})
        metadata["annotations"] = {**(metadata.get("annotations") or {}), ANNOTATION_LOGDIR: logdir}
        return replace(self, manifest=manifest)

    def in_namespace(self, namespace: str) -> TFJob:
        """This job placed in ``namespace`` (metadata.namespace of its manifest included)."""
        manifest = self.to_manifest()
        manifest.setdefault("metadata", {})["namespace"] = namespace
        return replace(self, namespace=namespace, manifest=manifest)


@dataclass(frozen=True)
class ParseResult:
    """What parsing gives back: the job, plus messages the front end should show."""

    job: TFJob
    notices: list[str] = field(default_factory=list)  # e.g. "converted from tensorflow.org/v1alpha1 TfJob"
    warnings: list[str] = field(default_factory=list)  # e.g. unknown fields that were ignored
