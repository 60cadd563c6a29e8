"""IPython magics: ``%tfjob``/``%%tfjob`` (TFJobs) and ``%model`` (model serving).

Front ends only: argument parsing and display over :class:`kubeflow_jupyter.client.TFJobClient`
and :mod:`kubeflow_jupyter.serving`. Importing this module imports nothing heavy.
"""

from __future__ import annotations

MAGIC_CLASSES = ("TFJobMagics", "ModelMagics")


def register(ipython) -> None:
    from .model import ModelMagics
    from .tfjob import TFJobMagics

    for cls in (TFJobMagics, ModelMagics):
        ipython.register_magics(cls(ipython))


def unregister(ipython) -> None:
    """Undo :func:`register` (``%unload_ext``): the magics this extension's instances provide and
    the display formatters they added; a magic of the same name from elsewhere is left alone."""
    manager = ipython.magics_manager
    for class_name in MAGIC_CLASSES:
        instance = manager.registry.pop(class_name, None)
        if instance is None:
            continue
        for table in manager.magics.values():
            for name in [n for n, func in table.items() if getattr(func, "__self__", None) is instance]:
                del table[name]
        close = getattr(instance, "unregister_formatters", None)
        if close is not None:
            close()
