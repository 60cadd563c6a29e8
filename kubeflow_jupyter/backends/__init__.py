"""Where TFJobs run. ``get_backend`` picks one; nothing heavy is imported here."""

from __future__ import annotations

import os

from ..errors import OptionError, UnknownBackend
from ..tfjob.model import DEFAULT_NAMESPACE
from .base import Backend

BACKENDS = ("auto", "local", "kubernetes")
ENV_BACKEND = "KUBEFLOW_JUPYTER_BACKEND"
ENV_KUBE_CONTEXT = "KUBEFLOW_JUPYTER_KUBE_CONTEXT"
#: the namespace when none is given (JupyterHub sets it to the notebook pod's namespace)
ENV_NAMESPACE = "KUBEFLOW_JUPYTER_NAMESPACE"


def kubernetes_configured() -> bool:
    """True inside a cluster, or when a kubeconfig has a current context (or the context named by
    $KUBEFLOW_JUPYTER_KUBE_CONTEXT). Cheap: reads YAML, imports no Kubernetes client."""
    import yaml

    if os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    ):
        return True
    wanted = os.environ.get(ENV_KUBE_CONTEXT)
    paths = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    for path in paths.split(os.pathsep):
        try:
            with open(path, encoding="utf-8") as f:
                config = yaml.safe_load(f)
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(config, dict):
            continue
        names = [c.get("name") for c in config.get("contexts") or [] if isinstance(c, dict)]
        if (wanted and wanted in names) or (not wanted and config.get("current-context")):
            return True
    return False


def resolve_backend_name(
    name: str | None = None, *, context: str | None = None, kubeconfig: str | os.PathLike | None = None
) -> str:
    """Explicit name, else $KUBEFLOW_JUPYTER_BACKEND, else auto-detection (Kubernetes when a
    ``context`` or ``kubeconfig`` is given: they name a cluster)."""
    chosen = (name or os.environ.get(ENV_BACKEND) or "auto").strip().lower()
    if chosen not in BACKENDS:
        raise UnknownBackend(
            f"unknown backend {chosen!r}: use one of {', '.join(BACKENDS)} (--backend or ${ENV_BACKEND})"
        )
    if chosen == "auto":
        chosen = "kubernetes" if context or kubeconfig or kubernetes_configured() else "local"
    return chosen


def get_backend(
    name: str | None = None,
    *,
    namespace: str | None = None,
    context: str | None = None,
    kubeconfig: str | os.PathLike | None = None,
    **options,
) -> Backend:
    """The backend ``name`` (see :func:`resolve_backend_name`) working in ``namespace``: the one
    given, else $KUBEFLOW_JUPYTER_NAMESPACE, else the backend's own default (the service
    account's or the context's namespace on Kubernetes; ``DEFAULT_NAMESPACE`` otherwise).
    ``context``/``kubeconfig`` choose the cluster; the local backend refuses them."""
    chosen = resolve_backend_name(name, context=context, kubeconfig=kubeconfig)
    namespace = namespace or os.environ.get(ENV_NAMESPACE, "").strip() or None
    if chosen == "local":
        given = " and ".join(
            option for option, value in (("--context", context), ("--kubeconfig", kubeconfig)) if value
        )
        if given:
            raise OptionError(
                f"{given} {'apply' if ' and ' in given else 'applies'} to the kubernetes backend only, "
                f"but the local backend was chosen (--backend or ${ENV_BACKEND}): drop {given}, "
                "or use --backend kubernetes"
            )
        from .local import LocalBackend

        return LocalBackend(namespace=namespace, **options)
    from .kubernetes import KubernetesBackend

    return KubernetesBackend(namespace=namespace, context=context, kubeconfig=kubeconfig, **options)


__all__ = [
    "BACKENDS",
    "DEFAULT_NAMESPACE",
    "ENV_NAMESPACE",
    "Backend",
    "get_backend",
    "kubernetes_configured",
    "resolve_backend_name",
]
