"""``%tfjob`` in a real IPython InteractiveShell: the shell is a process-wide singleton, so every
test gets the registered magics back as it found them."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ipython_shell():
    """A real IPython InteractiveShell with the extension loaded (as ``%load_ext`` does)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("kubeflow_jupyter")  # what %load_ext runs, minus its "already loaded" note
    return shell


@pytest.fixture
def tfjob_magics(ipython_shell):
    """The shell's registered TFJobMagics with no cached client and no last job; a test may swap
    its ``client_factory``: the original is put back, and the caches emptied, at teardown."""
    ipython_shell.extension_manager.load_extension("kubeflow_jupyter")  # again if a test ran %unload_ext
    magics = ipython_shell.magics_manager.registry["TFJobMagics"]
    factory = magics.client_factory
    magics.clients.clear()
    magics.last_job = None
    yield magics
    magics.client_factory = factory
    magics.clients.clear()
    magics.last_job = None
