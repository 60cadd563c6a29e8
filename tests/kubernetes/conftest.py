"""Fixtures for the Kubernetes backend tests.

``kube`` runs a test against the fake API server and, when $KUBEFLOW_JUPYTER_TEST_KUBECONFIG
points at a real cluster with training-operator 1.9, against that cluster as well: the same
test functions, no special cases. Tests that script replicas or inject faults take ``fake``. The session's ``fake_cluster`` is
shared with the lab tests (tests/support/fake_cluster.py).
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.manifests import PRINT_TF_CONFIG, tfjob_yaml

from kubeflow_jupyter.testing.fake_kube import FakeKubeCluster

ENV_REAL = "KUBEFLOW_JUPYTER_TEST_KUBECONFIG"
_counter = itertools.count()


@pytest.fixture
def fake(fake_cluster, tmp_path):
    """The session's fake cluster, with a kubeconfig for this test; faults are cleared afterwards."""
    fake_cluster.kubeconfig_path = fake_cluster.write_kubeconfig(tmp_path / "kubeconfig")
    yield fake_cluster
    fake_cluster.allow_all()
    fake_cluster.call(fake_cluster.server.faults.clear)
    fake_cluster.pause_operator(False)


@dataclass
class KubeTarget:
    kubeconfig: Path
    fake: FakeKubeCluster | None  # None: a real cluster

    def backend(self, **options):
        from kubeflow_jupyter.backends.kubernetes import KubernetesBackend

        return KubernetesBackend(kubeconfig=str(self.kubeconfig), **options)

    def client(self, **options):
        from kubeflow_jupyter.client import TFJobClient

        return TFJobClient(self.backend(**options))


@pytest.fixture(params=["fake", "real"])
def kube(request, job_name):
    if request.param == "fake":
        cluster = request.getfixturevalue("fake")
        yield KubeTarget(cluster.kubeconfig_path, cluster)
        return
    path = os.environ.get(ENV_REAL)
    if not path:
        pytest.skip(f"no real cluster: set ${ENV_REAL} to a kubeconfig of a cluster with training-operator 1.9")
    target = KubeTarget(Path(path), None)
    yield target
    client = target.client()  # leave the cluster as we found it
    for snap in client.list():
        if snap.name.startswith(job_name):
            client.delete(snap.name)


@pytest.fixture
def job_name(request) -> str:
    """A DNS-1035 name unique in the session (tests share one fake cluster)."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    return f"t{next(_counter)}-{base}".strip("-")


def cluster_tfjob(
    name: str, *, workers: int = 2, chief: bool = False, restart_policy: str = "Never", run_policy: dict | None = None
) -> str:
    """A small TFJob that also runs on a real cluster: each replica prints its TF_CONFIG and exits."""
    replicas = {"Chief": (1, restart_policy, PRINT_TF_CONFIG)} if chief else {}
    if workers:
        replicas["Worker"] = (workers, restart_policy, PRINT_TF_CONFIG)
    return tfjob_yaml(name, replicas, run_policy=run_policy)


@pytest.fixture
def make_tfjob():
    """``make_tfjob(name, workers=2, chief=False, restart_policy="Never", run_policy=None)`` → TFJob YAML text."""
    return cluster_tfjob
