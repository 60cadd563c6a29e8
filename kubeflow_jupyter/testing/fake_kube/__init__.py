"""A stand-in Kubernetes API server (kubeflow.org/v1 TFJobs, core/v1 pods and logs) with a
simulated training-operator, for tests and benchmarks. No API server binary can run on the
project's machines; this one speaks the real HTTP protocol and follows the server's rules
(resourceVersions, Status bodies, structural schema pruning and validation against the real
CRD, watches with bookmarks and 410 Expired, the status subresource, RBAC-style 403s, and,
when given them, ValidatingAdmissionPolicies on TFJob writes with the server's denial Status).

Needs ``aiohttp`` (installed with the ``test`` extra), and ``cel-python`` for policies.
"""

from .cluster import FakeKubeCluster
from .operator import ReplicaScript

__all__ = ["FakeKubeCluster", "ReplicaScript"]
