"""``TF_CONFIG`` exactly as training-operator 1.9 shapes it."""

from __future__ import annotations

import json
from collections.abc import Callable

from .model import DEFAULT_NAMESPACE, TFJob, pod_name

#: ``host(replica_type, index) -> "host:port"``
HostResolver = Callable[[str, int], str]


def cluster_dns_resolver(job: TFJob, namespace: str | None = None) -> HostResolver:
    """Hosts as the operator writes them on a cluster: ``<job>-<type>-<i>.<ns>.svc:<port>``."""
    ns = namespace or job.namespace or DEFAULT_NAMESPACE

    def host(replica_type: str, index: int) -> str:
        port = job.replica_specs[replica_type].port
        return f"{pod_name(job.name, replica_type, index)}.{ns}.svc:{port}"

    return host


def tf_config(job: TFJob, replica_type: str, index: int, host: HostResolver) -> dict | None:
    """The TF_CONFIG dict for one replica, or None for a single-replica job (the operator omits it).

    Like the operator, every replica type of the spec is a cluster key (an empty list
    for ``replicas: 0``), lowercase, ``master`` kept as ``master``."""
    if job.total_replicas <= 1:
        return None
    cluster = {
        rtype.lower(): [host(rtype, i) for i in range(spec.replicas)] for rtype, spec in job.replica_specs.items()
    }
    return {
        "cluster": dict(sorted(cluster.items())),
        "task": {"type": replica_type.lower(), "index": index},
        "environment": "cloud",
    }


def tf_config_json(job: TFJob, replica_type: str, index: int, host: HostResolver) -> str | None:
    """``TF_CONFIG`` as the operator serialises it with Go's json.Marshal: struct fields in
    declaration order (cluster, task{type,index}, environment), map keys sorted, no spaces."""
    cfg = tf_config(job, replica_type, index, host)
    if cfg is None:
        return None
    return json.dumps(cfg, separators=(",", ":"))
