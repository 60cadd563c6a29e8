"""Shared helpers for the hub tests: load a hub config file the way JupyterHub does, build pods offline."""

from __future__ import annotations

import asyncio
import functools
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from traitlets.config.loader import PyFileConfigLoader

REPO = Path(__file__).resolve().parents[2]
HUB_DIR = REPO / "jupyterhub_config"
CLUSTER_CONFIG = HUB_DIR / "jupyterhub_config.py"
LOCAL_CONFIG = HUB_DIR / "local_config.py"
K8S_DIR = HUB_DIR / "k8s"

# jupyterhub_config/ is a folder of the repository, not an installed package.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# A kubeconfig that points nowhere: KubeSpawner loads a client configuration when it
# is constructed, but building a pod manifest never calls the API server.
DUMMY_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: offline, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: offline, user: {token: not-a-real-token}}]
contexts: [{name: offline, context: {cluster: offline, user: offline}}]
current-context: offline
"""


def load_config(path: Path):
    """Execute a config file with traitlets' loader (what `jupyterhub -f` does) and return the Config."""
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def build_pod(config, user_options: dict) -> tuple[dict, dict]:
    """The pod and PVC manifests KubeSpawner would create for user 'ada' with these options, as plain dicts."""
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner

    chosen = config.JupyterHub.get("spawner_class")
    spawner_class = chosen if isinstance(chosen, type) else KubeSpawner  # the config's own spawner

    async def build():
        spawner = spawner_class(_mock=True, config=config)
        spawner.user.name = "ada"
        spawner.pod_name = spawner._expand_user_properties(spawner.pod_name_template)
        spawner.pvc_name = spawner._expand_user_properties(spawner.pvc_name_template)
        spawner.user_options = user_options
        await spawner.load_user_options()
        pod = await spawner.get_pod_manifest()
        pvc = spawner.get_pvc_manifest()
        async with ApiClient() as api:
            return api.sanitize_for_serialization(pod), api.sanitize_for_serialization(pvc)

    return asyncio.run(build())


KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
HAVE_KUBECTL = bool(shutil.which(KUBECTL))


def render(directory: Path = K8S_DIR) -> list[dict]:
    """`kubectl kustomize <directory>`: the objects `kubectl apply -k` would send."""
    out = subprocess.run([KUBECTL, "kustomize", str(directory)], check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@functools.lru_cache(maxsize=1)
def _rendered_once() -> str:
    return yaml.safe_dump_all(render())


def rendered_manifests() -> list[dict]:
    """The base manifests, rendered once per test session (a fresh copy for each caller)."""
    return [doc for doc in yaml.safe_load_all(_rendered_once()) if doc]


def one(objects: list[dict], kind: str, name: str) -> dict:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].startswith(name)]
    assert len(matches) == 1, f"expected one {kind} {name}, found {[m['metadata']['name'] for m in matches]}"
    return matches[0]


def shipped_settings() -> dict[str, str]:
    """The hub's environment as shipped: the tf-hub-settings literals of k8s/kustomization.yaml."""
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    (settings,) = [g for g in kustomization["configMapGenerator"] if g["name"] == "tf-hub-settings"]
    return dict(literal.split("=", 1) for literal in settings["literals"])
