"""The project's stand-in Kubernetes API server (kubeflow_jupyter.testing.fake_kube), one per session."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kubeflow_jupyter.client import TFJobClient

NAMESPACE = "team-a"  # the fake cluster's kubeconfig context namespace


@pytest.fixture(scope="session")
def fake_cluster():
    """A running FakeKubeCluster with a fast simulated training-operator; tests share it, so they
    use names unique in the session and leave no fault behind."""
    from kubeflow_jupyter.testing.fake_kube import FakeKubeCluster

    with FakeKubeCluster(namespace=NAMESPACE, step=0.005, run_seconds=0.03) as cluster:
        yield cluster


def fake_client(fake, **options) -> TFJobClient:
    """A client of a KubernetesBackend (``options``: its own) on the cluster of the ``fake`` fixture
    (tests/kubernetes/conftest.py), through the kubeconfig that fixture wrote."""
    from kubeflow_jupyter.backends.kubernetes import KubernetesBackend
    from kubeflow_jupyter.client import TFJobClient

    return TFJobClient(KubernetesBackend(kubeconfig=str(fake.kubeconfig_path), **options))
