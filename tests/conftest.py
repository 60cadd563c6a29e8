"""Shared test setup: every test gets its own local store and never sees a real cluster."""

from __future__ import annotations

import os

import pytest

# Fixtures shared by several test folders (helpers are imported from ``support`` directly).
pytest_plugins = ["support.fake_cluster", "support.magics"]

from support.cleanup import stop_unfinished_jobs  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """A fresh $KUBEFLOW_JUPYTER_HOME per test; backend forced local unless a test says otherwise."""
    home = tmp_path_factory.mktemp("kfj-home")
    monkeypatch.setenv("KUBEFLOW_JUPYTER_HOME", str(home))
    monkeypatch.setenv("KUBEFLOW_JUPYTER_BACKEND", "local")
    monkeypatch.setenv("KUBECONFIG", os.devnull)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBEFLOW_JUPYTER_NAMESPACE", raising=False)  # set in hub notebook pods
    # Keep TensorFlow quiet and on one thread pool per process: 2 cores are shared.
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    yield home
    stop_unfinished_jobs(home)
