"""Fixtures for the notebook front end's unit tests (the test double is in notebook_helpers.py;
``ipython_shell`` and the base ``tfjob_magics`` are shared, in tests/support/magics.py)."""

from __future__ import annotations

import pytest
from notebook_helpers import InMemoryBackendDouble

from kubeflow_jupyter.client import TFJobClient


@pytest.fixture
def memory_backend() -> InMemoryBackendDouble:
    return InMemoryBackendDouble()


@pytest.fixture
def memory_client(memory_backend) -> TFJobClient:
    return TFJobClient(memory_backend)


@pytest.fixture
def tfjob_magics(tfjob_magics, memory_backend):
    """The shared ``tfjob_magics`` (tests/support/magics.py, which puts the factory back afterwards),
    its clients made over a fresh in-memory double: this test's for the default namespace, another per namespace."""
    tfjob_magics.client_factory = lambda backend, namespace, context, kubeconfig: TFJobClient(
        memory_backend if namespace is None else InMemoryBackendDouble(namespace)
    )
    return tfjob_magics
