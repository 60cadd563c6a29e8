"""Where the cluster is and who we are: in-cluster service account or a kubeconfig context,
loaded by the official client into a private ``ApiClient`` (the global default is left alone)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import BackendError
from ...tfjob.model import DEFAULT_NAMESPACE

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
ENV_CONTEXT = "KUBEFLOW_JUPYTER_KUBE_CONTEXT"


@dataclass
class Connection:
    api_client: object  # kubernetes.client.ApiClient
    namespace: str
    host: str  # the API server URL, for messages
    source: str  # "in-cluster service account" or "kubeconfig ~/.kube/config, context x"

    def where(self) -> str:
        return f"at {self.host} ({self.source})"


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (SA_DIR / "token").exists()


def kubeconfig_paths(explicit: str | os.PathLike | None) -> str:
    """``kubeconfig=``, else $KUBECONFIG (may list several files), else ~/.kube/config."""
    return str(explicit or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config"))


def _service_account_namespace() -> str | None:
    try:
        return (SA_DIR / "namespace").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def connect(
    namespace: str | None = None, context: str | None = None, kubeconfig: str | os.PathLike | None = None
) -> Connection:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    context = context or os.environ.get(ENV_CONTEXT) or None
    cfg = client.Configuration()
    if in_cluster() and not (context or kubeconfig):
        try:
            config.load_incluster_config(client_configuration=cfg)
        except ConfigException as e:
            raise BackendError(f"cannot use this pod's service account to reach Kubernetes: {e}") from None
        ns = namespace or _service_account_namespace() or DEFAULT_NAMESPACE
        return Connection(client.ApiClient(cfg), ns, cfg.host, "in-cluster service account")

    paths = kubeconfig_paths(kubeconfig)
    try:
        contexts, active = config.list_kube_config_contexts(config_file=paths)
        if context:
            chosen = next((c for c in contexts if c["name"] == context), None)
            if chosen is None:
                names = ", ".join(c["name"] for c in contexts) or "none"
                raise BackendError(
                    f"no context {context!r} in kubeconfig {paths} (contexts: {names}): "
                    f"choose one with --context or ${ENV_CONTEXT}"
                )
        else:
            chosen = active
        config.load_kube_config(config_file=paths, context=chosen["name"], client_configuration=cfg)
    except (ConfigException, OSError, TypeError, KeyError) as e:
        raise BackendError(
            f"no usable Kubernetes configuration in kubeconfig {paths} ({e}): point --kubeconfig or $KUBECONFIG "
            f"at a kubeconfig with a current context (or choose one with --context or ${ENV_CONTEXT}), "
            "or run on this machine with --backend local"
        ) from None
    ns = (
        namespace
        or (_service_account_namespace() if in_cluster() else None)
        or (chosen.get("context") or {}).get("namespace")
        or DEFAULT_NAMESPACE
    )
    return Connection(client.ApiClient(cfg), ns, cfg.host, f"kubeconfig {paths}, context {chosen['name']!r}")
