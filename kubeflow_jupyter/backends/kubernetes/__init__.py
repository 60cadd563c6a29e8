"""The Kubernetes backend: TFJobs run by Kubeflow training-operator on a cluster.

Imported lazily by :func:`kubeflow_jupyter.backends.get_backend`; the ``kubernetes``
client itself is imported only when a backend is constructed.
"""

from .backend import KubernetesBackend

__all__ = ["KubernetesBackend"]
