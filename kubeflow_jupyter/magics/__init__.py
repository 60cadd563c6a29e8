"""IPython magics: ``%tfjob``/``%%tfjob`` (TFJobs) and ``%model`` (model serving).

Front ends only: argument parsing and display over :class:`kubeflow_jupyter.client.TFJobClient`
and :mod:`kubeflow_jupyter.serving`. Importing this module imports nothing heavy.
"""

from __future__ import annotations

_registered: list = []


def register(ipython) -> None:
    from .model import ModelMagics
    from .tfjob import TFJobMagics

    for cls in (TFJobMagics, ModelMagics):
        instance = cls(ipython)
        ipython.register_magics(instance)
        _registered.append(instance)


def unregister(ipython) -> None:
    _registered.clear()
