"""The optional parts of the install, and how a feature asks for one.

``pip install kubeflow-jupyter`` is the whole Jupyter extension (magics, widgets, the server
and lab extensions, both backends). TensorFlow and ``tensorflow-serving-api`` (≈ 600 MB)
come with the ``[tensorflow]`` extra, JupyterHub with ``[hub]``. A feature that needs one
calls :func:`require` where it first imports it (never at package import time); without it
the user reads one line naming the command (:class:`~kubeflow_jupyter.errors.MissingExtra`).

:func:`require` also imports TensorFlow quietly: its C++ start-up lines (oneDNN, the CUDA
probe, CPU features) are written to file descriptor 2 while it loads, before absl's logging
is initialised, so no environment variable silences all of them (measured with TF 2.21:
``TF_CPP_MIN_LOG_LEVEL`` only drops the CPU-feature line, ``TF_ENABLE_ONEDNN_OPTS=0`` would
change numerics). In a kernel fd 2 is the cell's stderr: the import runs with fd 2 pointed at
a file, and whatever is not a start-up line (:func:`kubeflow_jupyter.logfold.is_startup_line`)
is written back.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from types import ModuleType

from .errors import MissingExtra
from .logfold import is_startup_line

TENSORFLOW, HUB = "tensorflow", "hub"

#: top-level module -> (the extra that installs it, what to call it in a message)
PROVIDED_BY: dict[str, tuple[str, str]] = {
    "tensorflow": (TENSORFLOW, "TensorFlow"),
    "keras": (TENSORFLOW, "Keras (TensorFlow)"),
    "tensorflow_serving": (TENSORFLOW, "tensorflow-serving-api"),
    "grpc": (TENSORFLOW, "grpcio (tensorflow-serving-api)"),
    "tensorboard": (TENSORFLOW, "TensorBoard"),
    "jupyter_server_proxy": (TENSORFLOW, "jupyter-server-proxy (TensorBoard in the notebook)"),
    "jupyterhub": (HUB, "JupyterHub"),
    "kubespawner": (HUB, "jupyterhub-kubespawner"),
}

# TensorFlow's own C++ logging past start-up: INFO and WARNING off unless the user chose a level
# (errors still show). Set before TensorFlow loads; it reads the variable once.
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2"}

_import_lock = threading.Lock()


def install_command(extra: str) -> str:
    return f"pip install 'kubeflow-jupyter[{extra}]'"


def missing(*modules: str) -> str | None:
    """The first of ``modules`` (top-level names) that is not installed, without importing any."""
    for module in modules:
        top = module.partition(".")[0]
        if top in sys.modules:
            if sys.modules[top] is None:  # import blocked (how Python spells "not installed" in sys.modules)
                return top
            continue
        if importlib.util.find_spec(top) is None:
            return top
    return None


def check(*modules: str, feature: str, alternative: str = "") -> None:
    """Raise :class:`MissingExtra` if one of ``modules`` is not installed (nothing is imported:
    cheap enough to ask before a slow step, e.g. before starting a server process)."""
    absent = missing(*modules)
    if absent is not None:
        raise _missing_extra(absent, feature, alternative)


def require(module: str, *more: str, feature: str, alternative: str = "") -> ModuleType:
    """Import ``module`` (and ``more``) for ``feature``, quietly; the first one is returned.

    ``feature`` names what the user asked for (``"kubeflow-jupyter serve"``, ``"%model serve"``);
    ``alternative`` is what they can do instead (``"or use --rest"``)."""
    check(module, *more, feature=feature, alternative=alternative)
    modules = [module, *more]
    if all(name in sys.modules for name in modules):
        return sys.modules[module]
    try:
        with _import_lock, quiet_startup():
            loaded = [importlib.import_module(name) for name in modules]
    except ModuleNotFoundError as e:  # installed, but a part of the extra it needs is not
        top = (e.name or "").partition(".")[0]
        if top in PROVIDED_BY:
            raise _missing_extra(top, feature, alternative) from None
        raise
    return loaded[0]


def _missing_extra(module: str, feature: str, alternative: str) -> MissingExtra:
    extra, what = PROVIDED_BY.get(module, (TENSORFLOW, module))
    return MissingExtra(
        feature=feature, needs=what, extra=extra, command=install_command(extra), alternative=alternative
    )


@contextlib.contextmanager
def quiet_startup() -> Iterator[None]:
    """Run the block (an import) with TensorFlow's C++ start-up lines dropped, if it loads TensorFlow.

    Sets :data:`QUIET_ENVIRONMENT` (what the user set is kept); the first time TensorFlow loads
    in this process the block runs under :func:`dropping_startup_lines`."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if "tensorflow" in sys.modules:  # it printed its start-up lines when it loaded
        yield
        return
    with dropping_startup_lines():
        yield


@contextlib.contextmanager
def dropping_startup_lines() -> Iterator[None]:
    """Send file descriptor 2 to a temporary file for the block, then write back every line that
    is not a TensorFlow start-up line (a real error in the block still shows, after it)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no fd 2 to redirect (embedded, closed): nothing to quiet
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            said = capture.read().decode("utf-8", "replace")
            kept = [line for line in said.splitlines() if line.strip() and not is_startup_line(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)
