# JupyterHub on this machine: what `make run` starts (through jupyterhub_config/run_local.py).
#
#   jupyterhub -f jupyterhub_config/local_config.py
#
# Same hub as the cluster's, on one machine: 127.0.0.1 only, JupyterLab, kubeflow-jupyter's
# local backend, one user logging in with a shared password. Values come from HUB_*
# environment variables (docs/hub.md) or $HUB_EXTRA_CONFIG; unknown names stop the hub.
#
# Who runs the notebook server:
#   * hub started by a normal user -> SimpleLocalProcessSpawner: the server runs as that
#     same user, no account switching (nothing to switch to, nothing gained by it);
#   * hub started as root (containers, CI) -> LocalProcessSpawner with an unprivileged
#     system account (default "jovyan", created by run_local.py). A notebook is arbitrary
#     code: running it as root hands it the whole machine, and Jupyter Server refuses
#     root anyway ("Running as root is not recommended. Use --allow-root to bypass.");
#   * only when no unprivileged account can run this Python (an interpreter under /root,
#     mode 700, as pyenv installs it for root) and HUB_NOTEBOOK_AS_ROOT=true is set
#     (run_local.py sets it after probing, and says so) does the server run as root,
#     with --allow-root passed explicitly.
import os
import pwd
import secrets
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from hubconf import (
    LOCAL_API_PORT,
    LOCAL_HUB_PORT,
    LOCAL_PROXY_API_PORT,
    ROOT_HUB_USER,
    HubConfigError,
    as_bool,
    check_config,
    idle_culler,
    setting,
)

c = get_config()  # noqa: F821  (provided by JupyterHub when it loads this file)

REPO = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)
HUB_IS_ROOT = os.geteuid() == 0
LOGIN = pwd.getpwuid(os.geteuid()).pw_name

# -- network: loopback only ------------------------------------------------------
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = setting("HUB_PORT", LOCAL_HUB_PORT, "Port of the hub's public URL (http://127.0.0.1:PORT).", int)
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = setting("HUB_API_PORT", LOCAL_API_PORT, "Port of the hub's internal API.", int)
c.ConfigurableHTTPProxy.api_url = (
    f"http://127.0.0.1:{setting('HUB_PROXY_API_PORT', LOCAL_PROXY_API_PORT, 'Port of the proxy API.', int)}"
)
_bundled_proxy = os.path.join(REPO, ".cache", "node", "node_modules", ".bin", "configurable-http-proxy")
# Its routine info lines (each route added, each 200 from its API) repeat what the hub
# logs; warnings and errors (a server that stopped answering) still show.
c.ConfigurableHTTPProxy.log_level = "warn"
c.ConfigurableHTTPProxy.command = [
    setting(
        "HUB_PROXY_COMMAND",
        _bundled_proxy if os.path.exists(_bundled_proxy) else "configurable-http-proxy",
        "configurable-http-proxy executable (default: the one `make` installs in .cache/node).",
    )
]

# -- state: database, cookie secret, pid files -------------------------------------------
_state = setting("HUB_STATE_DIR", os.path.join(REPO, ".cache", "hub"), "Directory for the hub's database and secrets.")
os.makedirs(_state, mode=0o700, exist_ok=True)
c.JupyterHub.db_url = f"sqlite:///{os.path.join(_state, 'jupyterhub.sqlite')}"
c.JupyterHub.cookie_secret_file = os.path.join(_state, "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(_state, "jupyterhub.pid")
c.ConfigurableHTTPProxy.pid_file = os.path.join(_state, "proxy.pid")

# -- the one user and the shared password ------------------------------------------------
NOTEBOOK_AS_ROOT = setting(
    "HUB_NOTEBOOK_AS_ROOT",
    False,
    "Hub as root: run notebook servers as root too (only if no account can run Python).",
    as_bool,
)
USE_ACCOUNT = HUB_IS_ROOT and not NOTEBOOK_AS_ROOT
HUB_USER = setting(
    "HUB_USER",
    ROOT_HUB_USER if USE_ACCOUNT else LOGIN,
    "User name to log in with (default: your login name; jovyan when the hub is root).",
)
_password = setting("HUB_PASSWORD", "", "Shared password (8+ characters; default: generated and printed at start).")
if not _password:
    _password = secrets.token_urlsafe(12)
    print(f"JupyterHub: log in as {HUB_USER!r} with password {_password!r}", file=sys.stderr, flush=True)
if len(_password) < 8:
    raise HubConfigError("$HUB_PASSWORD must be at least 8 characters")
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = _password
c.Authenticator.allowed_users = {HUB_USER}

# -- the notebook server ---------------------------------------------------------------------
if USE_ACCOUNT:
    try:
        _account = pwd.getpwnam(HUB_USER)
    except KeyError:
        raise HubConfigError(
            f"the hub runs as root, so notebook servers run as the system account {HUB_USER!r}, which does not exist: "
            f"create it (useradd --create-home {HUB_USER}) or start the hub with "
            "`python -m jupyterhub_config.run_local`, which does"
        ) from None
    if _account.pw_uid == 0:
        raise HubConfigError(
            f"HUB_USER={HUB_USER!r} is root: notebook servers must not run as root; "
            f"pick an unprivileged account (default {ROOT_HUB_USER!r})"
        )
    c.JupyterHub.spawner_class = "localprocess"
    _home = _account.pw_dir
    _default_notebook_dir = os.path.join(_home, "kubeflow-jupyter")
else:
    c.JupyterHub.spawner_class = "simple"
    _home = pwd.getpwuid(os.geteuid()).pw_dir
    c.SimpleLocalProcessSpawner.home_dir_template = _home
    _default_notebook_dir = REPO
    if HUB_IS_ROOT:
        # Explicitly requested (HUB_NOTEBOOK_AS_ROOT): say it, and pass the flag Jupyter Server demands.
        print("JupyterHub: notebook servers run as root (HUB_NOTEBOOK_AS_ROOT=true)", file=sys.stderr, flush=True)
        c.Spawner.args = ["--allow-root"]
_notebook_dir = setting(
    "HUB_NOTEBOOK_DIR",
    _default_notebook_dir if os.path.isdir(_default_notebook_dir) else _home,
    "Folder JupyterLab opens (default: this repository, or a copy of examples/ when the hub is root).",
)
c.Spawner.notebook_dir = _notebook_dir
c.Spawner.default_url = "/lab"
c.Spawner.cmd = [os.path.join(VENV_BIN, "jupyterhub-singleuser")]
# JupyterLab's first start on a busy 2-core machine takes a while.
c.Spawner.start_timeout = setting("HUB_START_TIMEOUT", 180, "Seconds a notebook server may take to start.", int)
c.Spawner.http_timeout = c.Spawner.start_timeout
c.Spawner.environment = {
    # The venv first, so `python` in a TFJob's command is the one with TensorFlow.
    "PATH": os.pathsep.join([VENV_BIN, os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")]),
    "VIRTUAL_ENV": os.path.dirname(VENV_BIN),
    "KUBEFLOW_JUPYTER_BACKEND": "local",
    "KUBEFLOW_JUPYTER_MODEL_SERVER": setting(
        "HUB_MODEL_SERVER", "127.0.0.1:9000", "host:port of the model server's gRPC API for %model."
    ),
}
# Where the local backend keeps its jobs, when the hub's environment chooses (tests, custom installs).
if os.environ.get("KUBEFLOW_JUPYTER_HOME"):
    c.Spawner.environment["KUBEFLOW_JUPYTER_HOME"] = os.environ["KUBEFLOW_JUPYTER_HOME"]

idle_culler(
    c,
    timeout=setting("HUB_CULL_TIMEOUT", 3600, "Stop servers idle this many seconds (0: never).", int),
    every=setting("HUB_CULL_EVERY", 300, "How often the culler checks, in seconds.", int),
)
c.JupyterHub.cleanup_servers = setting(
    "HUB_CLEANUP_SERVERS", True, "Stop notebook servers when the hub stops (true/false).", as_bool
)

_extra = setting("HUB_EXTRA_CONFIG", "", "Path of a Python config file loaded after this one.")
if _extra:
    if not os.path.isfile(_extra):
        raise HubConfigError(f"$HUB_EXTRA_CONFIG={_extra!r} does not exist")
    load_subconfig(_extra)  # noqa: F821  (provided by traitlets when it loads this file)

from jupyterhub.app import JupyterHub  # noqa: E402
from jupyterhub.authenticators.shared import SharedPasswordAuthenticator  # noqa: E402
from jupyterhub.proxy import ConfigurableHTTPProxy  # noqa: E402
from jupyterhub.spawner import SimpleLocalProcessSpawner  # noqa: E402

# SimpleLocalProcessSpawner subclasses LocalProcessSpawner: both sections are checked.
check_config(c, [JupyterHub, SimpleLocalProcessSpawner, ConfigurableHTTPProxy, SharedPasswordAuthenticator])
