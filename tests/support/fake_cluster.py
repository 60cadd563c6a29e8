"""The project's stand-in Kubernetes API server (kubeflow_jupyter.testing.fake_kube), one per session."""

from __future__ import annotations

import pytest

NAMESPACE = "team-a"  # the fake cluster's kubeconfig context namespace


@pytest.fixture(scope="session")
def fake_cluster():
    """A running FakeKubeCluster with a fast simulated training-operator; tests share it, so they
    use names unique in the session and leave no fault behind."""
    from kubeflow_jupyter.testing.fake_kube import FakeKubeCluster

    with FakeKubeCluster(namespace=NAMESPACE, step=0.005, run_seconds=0.03) as cluster:
        yield cluster
