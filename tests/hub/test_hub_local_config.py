"""local_config.py: loopback only, JupyterLab on the local backend, and who the notebook server runs as."""

from __future__ import annotations

import os
import pwd

import pytest
from hub_support import CLUSTER_CONFIG, DUMMY_KUBECONFIG, LOCAL_CONFIG, REPO, load_config

HUB_IS_ROOT = os.geteuid() == 0
LOGIN = pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture
def local_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HUB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HUB_PASSWORD", "local-secret")
    return monkeypatch


def test_hub_local_binds_loopback_and_runs_lab_on_the_local_backend(local_env):
    local_env.setenv("HUB_NOTEBOOK_AS_ROOT", "true")  # the same on any machine: no account needed
    c = load_config(LOCAL_CONFIG)
    assert c.JupyterHub.ip == "127.0.0.1" and c.JupyterHub.hub_ip == "127.0.0.1"
    assert c.ConfigurableHTTPProxy.api_url.startswith("http://127.0.0.1:")
    assert c.JupyterHub.authenticator_class == "shared-password"
    assert c.SharedPasswordAuthenticator.user_password == "local-secret"
    assert c.Authenticator.allowed_users == {LOGIN}
    assert c.Spawner.default_url == "/lab"
    assert c.Spawner.environment["KUBEFLOW_JUPYTER_BACKEND"] == "local"
    assert c.Spawner.environment["PATH"].split(os.pathsep)[0] == os.path.dirname(c.Spawner.cmd[0])
    assert c.JupyterHub.db_url.startswith("sqlite:///") and "state" in c.JupyterHub.db_url


def test_hub_local_user_and_generated_password(local_env, capfd):
    local_env.delenv("HUB_PASSWORD")
    local_env.setenv("HUB_NOTEBOOK_AS_ROOT", "true")
    local_env.setenv("HUB_USER", "grace")
    c = load_config(LOCAL_CONFIG)
    password = c.SharedPasswordAuthenticator.user_password
    assert len(password) >= 8
    assert f"log in as 'grace' with password {password!r}" in capfd.readouterr().err
    assert c.Authenticator.allowed_users == {"grace"}


def test_hub_local_short_password_is_refused(local_env):
    local_env.setenv("HUB_PASSWORD", "short")
    local_env.setenv("HUB_NOTEBOOK_AS_ROOT", "true")
    with pytest.raises(SystemExit, match="at least 8 characters"):
        load_config(LOCAL_CONFIG)


def test_hub_local_notebook_server_never_runs_as_root_silently(local_env):
    c = load_config(LOCAL_CONFIG) if not HUB_IS_ROOT else None
    if not HUB_IS_ROOT:
        # A normal user's hub: the server runs as that same user, no --allow-root.
        assert c.JupyterHub.spawner_class == "simple"
        assert "--allow-root" not in c.Spawner.get("args", [])
        return
    # Root's hub: an unprivileged account, which must exist and must not be root ...
    local_env.setenv("HUB_USER", "no-such-account-kfj")
    with pytest.raises(SystemExit, match="'no-such-account-kfj', which does not exist"):
        load_config(LOCAL_CONFIG)
    local_env.setenv("HUB_USER", "root")
    with pytest.raises(SystemExit, match="must not run as root"):
        load_config(LOCAL_CONFIG)
    local_env.setenv("HUB_USER", "nobody")
    c = load_config(LOCAL_CONFIG)
    assert c.JupyterHub.spawner_class == "localprocess"
    assert "--allow-root" not in c.Spawner.get("args", [])
    # ... and root only when asked for explicitly, with the flag Jupyter Server demands.
    local_env.setenv("HUB_NOTEBOOK_AS_ROOT", "true")
    c = load_config(LOCAL_CONFIG)
    assert c.JupyterHub.spawner_class == "simple"
    assert c.Spawner.args == ["--allow-root"]


def test_hub_every_setting_is_documented(local_env, tmp_path):
    """Both configs read their knobs through hubconf.setting(); every one must be in docs/hub.md."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(DUMMY_KUBECONFIG)
    local_env.setenv("KUBECONFIG", str(kubeconfig))
    local_env.setenv("HUB_NOTEBOOK_AS_ROOT", "true")
    load_config(LOCAL_CONFIG)
    local_env.setenv("HUB_AUTHENTICATOR", "shared-password")
    local_env.setenv("HUB_SHARED_PASSWORD", "cluster-secret")
    load_config(CLUSTER_CONFIG)
    import hubconf

    guide = (REPO / "docs" / "hub.md").read_text()
    assert len(hubconf.SETTINGS) > 30
    missing = [name for name in hubconf.SETTINGS if f"`{name}`" not in guide]
    assert not missing, f"docs/hub.md does not document {missing}"
