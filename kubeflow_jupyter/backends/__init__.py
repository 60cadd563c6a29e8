"""Where TFJobs run. ``get_backend`` picks one; nothing heavy is imported here."""

from __future__ import annotations

import os

from ..errors import KubeflowJupyterError
from .base import Backend

BACKENDS = ("auto", "local", "kubernetes")
ENV_BACKEND = "KUBEFLOW_JUPYTER_BACKEND"


def kubernetes_configured() -> bool:
    """True inside a cluster, or when a kubeconfig with a current context exists (cheap: no client import)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    ):
        return True
    paths = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    for path in paths.split(os.pathsep):
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if line.startswith("current-context:") and line.split(":", 1)[1].strip().strip("\"'"):
                        return True
        except OSError:
            continue
    return False


def resolve_backend_name(name: str | None = None) -> str:
    """Explicit name, else $KUBEFLOW_JUPYTER_BACKEND, else auto-detection."""
    chosen = (name or os.environ.get(ENV_BACKEND) or "auto").strip().lower()
    if chosen not in BACKENDS:
        raise KubeflowJupyterError(
            f"unknown backend {chosen!r}: use one of {', '.join(BACKENDS)} "
            f"(--backend or ${ENV_BACKEND})"
        )
    if chosen == "auto":
        chosen = "kubernetes" if kubernetes_configured() else "local"
    return chosen


def get_backend(name: str | None = None, *, namespace: str | None = None, **options) -> Backend:
    chosen = resolve_backend_name(name)
    if chosen == "local":
        from .local import LocalBackend

        return LocalBackend(namespace=namespace, **options)
    from .kubernetes import KubernetesBackend

    return KubernetesBackend(namespace=namespace, **options)


__all__ = ["Backend", "BACKENDS", "get_backend", "resolve_backend_name", "kubernetes_configured"]
