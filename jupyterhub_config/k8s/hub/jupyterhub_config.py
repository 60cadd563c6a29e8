# JupyterHub on Kubernetes for kubeflow-jupyter (KubeSpawner 7.x).
#
# Admins change values without editing this file:
#   * environment variables HUB_* (each one is listed, with its default, in docs/hub.md;
#     the manifests in k8s/ set them on the hub container);
#   * $HUB_EXTRA_CONFIG: a Python config file loaded after this one (same `c.` syntax);
#   * the usual `jupyterhub --KubeSpawner.cpu_limit=4` command-line flags.
# Names JupyterHub or KubeSpawner would silently ignore (typos, the 2018 Kubeflow
# config's `singleuser_*` names) stop the hub with a message instead.
import os
import sys

# This file and hubconf.py sit side by side (in the ConfigMap on a cluster).
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from hubconf import (
    HubConfigError,
    as_bool,
    as_byte_size,
    as_image_list,
    as_list,
    as_positive_float,
    authenticator_class,
    check_config,
    idle_culler,
    is_dummy,
    saying_when_nobody_may_log_in,
    setting,
    unoffered_choice,
)

c = get_config()  # noqa: F821  (provided by JupyterHub when it loads this file)

# -- hub process, proxy and database --------------------------------------------
# The hub pod runs configurable-http-proxy as a sidecar (k8s/hub.yaml): the hub
# only talks to its API on localhost, with a token both containers read from a file.
# (the spawner: KubeflowSpawner, a KubeSpawner, at the end of this file)
c.JupyterHub.hub_bind_url = setting("HUB_BIND_URL", "http://0.0.0.0:8081", "URL the hub API listens on inside the pod.")
c.JupyterHub.hub_connect_url = setting(
    "HUB_CONNECT_URL",
    "http://tf-hub-0.kubeflow.svc:8081",
    "URL notebook pods (in another namespace) use to reach the hub API (Service tf-hub-0).",
)
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = setting(
    "HUB_PROXY_API_URL", "http://127.0.0.1:8001", "configurable-http-proxy's API URL (the sidecar)."
)
_token_file = setting(
    "HUB_PROXY_TOKEN_FILE", "/run/hub-proxy/token", "File holding the token shared with the proxy sidecar."
)
if os.path.exists(_token_file):
    with open(_token_file, encoding="utf-8") as f:
        c.ConfigurableHTTPProxy.auth_token = f.read().strip()
_data_dir = setting("HUB_DATA_DIR", "/srv/jupyterhub", "Hub database and cookie secret (the hub's PVC).")
c.JupyterHub.db_url = f"sqlite:///{_data_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{_data_dir}/jupyterhub_cookie_secret"
# Notebook pods outlive a hub restart (upgrade, config change): don't stop them.
c.JupyterHub.cleanup_servers = False
c.Authenticator.admin_users = set(setting("HUB_ADMIN_USERS", [], "Comma-separated hub admins.", as_list))
_allowed = setting(
    "HUB_ALLOWED_USERS", [], "Comma-separated users allowed to log in (empty: see HUB_ALLOW_ALL).", as_list
)
if _allowed:
    c.Authenticator.allowed_users = set(_allowed)
c.Authenticator.allow_all = setting(
    "HUB_ALLOW_ALL", False, "Let every user the authenticator accepts log in (true/false).", as_bool
)

# -- notebook pods ----------------------------------------------------------------
# Notebooks (and the TFJobs they submit) live in one shared users' namespace, never in
# the hub's own: the hub's ServiceAccount, database and cookie secret stay out of reach
# of anything a user starts. The hub's Role is in that namespace only (k8s/hub-rbac.yaml).
c.KubeSpawner.namespace = setting(
    "HUB_NOTEBOOK_NAMESPACE",
    "kubeflow-user",
    "Namespace of notebook pods, home PVCs and users' TFJobs (the hub's Role must be there).",
)
c.KubeSpawner.enable_user_namespaces = False  # one shared namespace: k8s/ has its Role and ServiceAccounts
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
c.KubeSpawner.default_url = "/lab"
c.KubeSpawner.start_timeout = setting("HUB_START_TIMEOUT", 600, "Seconds a pod may take to start (image pulls).", int)
c.KubeSpawner.image_pull_policy = "IfNotPresent"
# Security: jovyan (uid 1000, group users 100) as in Jupyter's images, no root,
# no privilege escalation, no Linux capabilities, the runtime's seccomp profile.
c.KubeSpawner.uid = 1000
c.KubeSpawner.gid = 100
c.KubeSpawner.fs_gid = 100
c.KubeSpawner.allow_privilege_escalation = False
c.KubeSpawner.container_security_context = {
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
# The notebook submits TFJobs with this account's narrow Role (k8s/notebook-rbac.yaml):
# its token is mounted for that, and only for a dedicated account: with "default" the pod
# gets no token at all (and notebooks cannot reach the cluster's API).
_notebook_account = setting(
    "HUB_NOTEBOOK_SERVICE_ACCOUNT",
    "jupyter-notebook",
    "ServiceAccount of notebook pods (its Role allows TFJobs); 'default': no account token in notebooks.",
)
if _notebook_account != "default":
    c.KubeSpawner.service_account = _notebook_account
    c.KubeSpawner.automount_service_account_token = True
else:
    c.KubeSpawner.automount_service_account_token = False
c.KubeSpawner.environment = {
    "KUBEFLOW_JUPYTER_BACKEND": "kubernetes",
    # Expanded by KubeSpawner to the namespace the pod runs in.
    "KUBEFLOW_JUPYTER_NAMESPACE": "{namespace}",
    "KUBEFLOW_JUPYTER_MODEL_SERVER": setting(
        "HUB_MODEL_SERVER", "model-service:9000", "host:port of TensorFlow Serving's gRPC API for %model."
    ),
}

# Persistent home: one PVC per user, created on first spawn and kept across restarts.
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.pvc_name_template = "claim-{user_server}"
c.KubeSpawner.storage_capacity = setting("HUB_STORAGE_CAPACITY", "10Gi", "Size of each user's home volume.")
_storage_class = setting("HUB_STORAGE_CLASS", "", "StorageClass of home volumes (empty: the cluster default).")
if _storage_class:
    c.KubeSpawner.storage_class = _storage_class
c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]
c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]


# -- profiles: what a user picks on the spawn page ------------------------------------
def _image_choices(images: list[str]) -> dict:
    """Fixed image choices: users pick from the list, never type an image (unlisted_choice off)."""
    choices = {
        f"image-{index}": {"display_name": image, "default": index == 0, "kubespawner_override": {"image": image}}
        for index, image in enumerate(images)
    }
    return {"image": {"display_name": "Image", "choices": choices, "unlisted_choice": {"enabled": False}}}


c.KubeSpawner.profile_list = [
    {
        "slug": "tensorflow-cpu",
        "display_name": "TensorFlow (CPU)",
        "description": "JupyterLab with TensorFlow and kubeflow-jupyter.",
        "default": True,
        "kubespawner_override": {
            "cpu_guarantee": setting("HUB_CPU_GUARANTEE", 0.5, "CPU profile: guaranteed cores.", as_positive_float),
            "cpu_limit": setting("HUB_CPU_LIMIT", 2.0, "CPU profile: core limit.", as_positive_float),
            "mem_guarantee": setting("HUB_MEM_GUARANTEE", "1G", "CPU profile: guaranteed memory.", as_byte_size),
            "mem_limit": setting("HUB_MEM_LIMIT", "4G", "CPU profile: memory limit.", as_byte_size),
        },
        "profile_options": _image_choices(
            setting(
                "HUB_CPU_IMAGES",
                "quay.io/jupyter/tensorflow-notebook:tensorflow-2.21.0",
                "CPU profile: comma-separated pinned images; the first is the default.",
                as_image_list,
            )
        ),
    },
    {
        "slug": "tensorflow-gpu",
        "display_name": "TensorFlow (GPU)",
        "description": "JupyterLab with CUDA TensorFlow on a node with an NVIDIA GPU.",
        "kubespawner_override": {
            "cpu_guarantee": setting("HUB_GPU_CPU_GUARANTEE", 1.0, "GPU profile: guaranteed cores.", as_positive_float),
            "cpu_limit": setting("HUB_GPU_CPU_LIMIT", 4.0, "GPU profile: core limit.", as_positive_float),
            "mem_guarantee": setting("HUB_GPU_MEM_GUARANTEE", "4G", "GPU profile: guaranteed memory.", as_byte_size),
            "mem_limit": setting("HUB_GPU_MEM_LIMIT", "16G", "GPU profile: memory limit.", as_byte_size),
            "extra_resource_limits": {
                "nvidia.com/gpu": str(setting("HUB_GPU_COUNT", 1, "GPU profile: GPUs per notebook.", int))
            },
            # GPU nodes are usually tainted so that only GPU work lands on them.
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
        "profile_options": _image_choices(
            setting(
                "HUB_GPU_IMAGES",
                "quay.io/jupyter/tensorflow-notebook:cuda-tensorflow-2.21.0",
                "GPU profile: comma-separated pinned CUDA images; the first is the default.",
                as_image_list,
            )
        ),
    },
]

# -- idle culler ------------------------------------------------------------------
idle_culler(
    c,
    timeout=setting("HUB_CULL_TIMEOUT", 3600, "Stop servers idle this many seconds (0: never).", int),
    every=setting("HUB_CULL_EVERY", 300, "How often the culler checks, in seconds.", int),
)

# -- authentication -----------------------------------------------------------------
_authenticator = setting(
    "HUB_AUTHENTICATOR",
    "",
    "Authenticator entry point (github, generic-oauth, ldap, shared-password, ...) or module.Class. Required.",
)
if _authenticator:
    c.JupyterHub.authenticator_class = _authenticator
_shared_password = setting(
    "HUB_SHARED_PASSWORD", "", "Password for the shared-password authenticator (from a Secret; 8+ characters)."
)
if _shared_password:
    c.SharedPasswordAuthenticator.user_password = _shared_password

# -- admin's extra config, then the checks that cover it too ---------------------------------
_extra = setting("HUB_EXTRA_CONFIG", "", "Path of a Python config file loaded after this one.")
if _extra:
    if not os.path.isfile(_extra):
        raise HubConfigError(f"$HUB_EXTRA_CONFIG={_extra!r} does not exist")
    load_subconfig(_extra)  # noqa: F821  (provided by traitlets when it loads this file)

_chosen = c.JupyterHub.authenticator_class if "authenticator_class" in c.JupyterHub else None
if not _chosen:
    raise HubConfigError(
        "no authenticator chosen: set $HUB_AUTHENTICATOR (for example github, generic-oauth or shared-password) "
        "or c.JupyterHub.authenticator_class in $HUB_EXTRA_CONFIG"
    )
_auth_cls = _chosen if isinstance(_chosen, type) else authenticator_class(_chosen)
_allow_dummy = setting(
    "HUB_ALLOW_DUMMY_AUTH", False, "Allow the dummy authenticator (anyone logs in, any password). Trials only.", as_bool
)
if is_dummy(_auth_cls) and not _allow_dummy:
    raise HubConfigError(
        "the dummy authenticator lets anyone log in as anyone on a cluster; choose a real one with "
        "$HUB_AUTHENTICATOR, or set HUB_ALLOW_DUMMY_AUTH=true for a throwaway trial"
    )
# Fail safe: nobody may log in until HUB_ALLOWED_USERS, HUB_ALLOW_ALL or the authenticator's
# own allow setting says who; until then the hub says so in one line at start-up.
c.JupyterHub.authenticator_class = saying_when_nobody_may_log_in(_auth_cls)

from jupyterhub.app import JupyterHub  # noqa: E402
from jupyterhub.authenticators.shared import SharedPasswordAuthenticator  # noqa: E402
from jupyterhub.proxy import ConfigurableHTTPProxy  # noqa: E402
from kubespawner import KubeSpawner  # noqa: E402


class KubeflowSpawner(KubeSpawner):
    """KubeSpawner, naming the offered choices when a spawn asks for one its profile does not list."""

    async def load_user_options(self):
        if self.user_options and not callable(self.profile_list):
            problem = unoffered_choice(self.user_options, self.profile_list)
            if problem:
                raise ValueError(problem)
        await super().load_user_options()


c.JupyterHub.spawner_class = KubeflowSpawner

if issubclass(_auth_cls, SharedPasswordAuthenticator) and not c.SharedPasswordAuthenticator.get("user_password"):
    raise HubConfigError(
        "the shared-password authenticator has no password: create the Secret "
        "(kubectl -n kubeflow create secret generic tf-hub-auth --from-literal=password=...) "
        "or set $HUB_SHARED_PASSWORD"
    )
check_config(c, [JupyterHub, KubeSpawner, ConfigurableHTTPProxy, _auth_cls])
