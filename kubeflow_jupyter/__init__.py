"""kubeflow-jupyter: distributed TensorFlow training (TFJob) and model serving from a notebook.

``%load_ext kubeflow_jupyter`` registers ``%tfjob``/``%%tfjob`` and ``%model``;
``%unload_ext kubeflow_jupyter`` removes them. ``report(step, loss=...)`` prints a metrics
record a training script's replicas log (``step=3 loss=0.5``; see docs/metrics.md).
Importing this package is cheap: TensorFlow, grpc, the kubernetes client and
ipywidgets are imported only where first used.
"""

from .metrics.report import report

__version__ = "0.1.0"
__all__ = ["report"]


def load_ipython_extension(ipython) -> None:
    from .magics import register

    register(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unregister

    unregister(ipython)


def _jupyter_server_extension_points():
    return [{"module": "kubeflow_jupyter.serverext"}]


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "kubeflow-jupyter"}]
