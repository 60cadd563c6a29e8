"""Fixtures for the notebook front end's unit tests (the test double is in notebook_helpers.py)."""

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


@pytest.fixture(scope="module")
def ipython_shell():
    """A real IPython InteractiveShell with the extension loaded (as ``%load_ext`` does)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kubeflow_jupyter")
    return shell


@pytest.fixture
def tfjob_magics(ipython_shell, memory_backend):
    """The shell's registered TFJobMagics, pointed at a fresh in-memory double for this test."""
    magics = ipython_shell.magics_manager.registry["TFJobMagics"]
    magics.clients.clear()
    magics.last_job = None
    magics.client_factory = lambda backend, namespace, context, kubeconfig: TFJobClient(
        memory_backend if namespace is None else InMemoryBackendDouble(namespace)
    )
    return magics
