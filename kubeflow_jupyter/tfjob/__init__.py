"""The TFJob domain: pure Python, no I/O, no processes.

- :func:`parse_tfjob` — YAML/dict → validated :class:`TFJob` with the operator's defaults
  (``kubeflow.org/v1``; the seed's ``tensorflow.org/v1alpha1`` TfJob is converted);
- :func:`tf_config` — the ``TF_CONFIG`` the operator injects;
- :mod:`.rules` — the operator's status rules as pure functions;
- :mod:`.status` — the status model every backend produces.
"""

from .model import ParseResult, ReplicaSpec, RunPolicy, TFJob, pod_name, replica_id
from .spec import parse_tfjob
from .status import Condition, JobSnapshot, ReplicaState
from .tfconfig import cluster_dns_resolver, tf_config, tf_config_json

__all__ = [
    "Condition",
    "JobSnapshot",
    "ParseResult",
    "ReplicaSpec",
    "ReplicaState",
    "RunPolicy",
    "TFJob",
    "cluster_dns_resolver",
    "parse_tfjob",
    "pod_name",
    "replica_id",
    "tf_config",
    "tf_config_json",
]
