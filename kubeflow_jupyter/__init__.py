"""kubeflow-jupyter: distributed TensorFlow training (TFJob) and model serving from a notebook.

``%load_ext kubeflow_jupyter`` registers ``%tfjob``/``%%tfjob`` and ``%model``;
``%unload_ext kubeflow_jupyter`` removes them.
Importing this package is cheap: TensorFlow, grpc, the kubernetes client and
ipywidgets are imported only where first used.
"""

__version__ = "0.1.0"


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
