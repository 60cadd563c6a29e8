"""Who may log in to the cluster hub: nobody as shipped (fail safe), said in one line at start-up."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import threading

import pytest
from hub_support import (
    CLUSTER_CONFIG,
    DUMMY_KUBECONFIG,
    HAVE_KUBECTL,
    K8S_DIR,
    REPO,
    load_config,
    one,
    render,
    shipped_settings,
)

from jupyterhub_config.hubconf import NOBODY_ALLOWED

PASSWORD = "correct-horse-battery"  # what the Secret tf-hub-auth gives the hub


@pytest.fixture
def shipped(monkeypatch, tmp_path):
    """The environment the manifests give the hub, and nothing of the test runner's HUB_* variables."""
    for name in list(os.environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)
    for name, value in shipped_settings().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HUB_SHARED_PASSWORD", PASSWORD)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(DUMMY_KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    return monkeypatch


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def allow_check_warnings() -> list[str]:
    """What the configured authenticator warns when JupyterHub runs its start-up check of who may log in."""
    config = load_config(CLUSTER_CONFIG)
    authenticator = config.JupyterHub.authenticator_class(config=config)
    collected = Collected()
    authenticator.log.addHandler(collected)
    try:
        authenticator.check_allow_config()
    finally:
        authenticator.log.removeHandler(collected)
    return collected.messages


def test_hub_as_shipped_says_in_one_line_that_nobody_can_log_in(shipped):
    assert "HUB_ALLOWED_USERS" not in shipped_settings() and "HUB_ALLOW_ALL" not in shipped_settings()
    assert allow_check_warnings() == [NOBODY_ALLOWED]
    assert "\n" not in NOBODY_ALLOWED and "docs/hub.md step 3" in NOBODY_ALLOWED
    for setting in ("HUB_ALLOWED_USERS", "HUB_ALLOW_ALL"):
        assert setting in NOBODY_ALLOWED


@pytest.mark.parametrize(
    "setting, value",
    [
        ("HUB_ALLOWED_USERS", "alice,bob"),
        ("HUB_ALLOW_ALL", "true"),
        ("HUB_EXTRA_CONFIG", "c = get_config()\nc.Authenticator.allowed_users = {'alice'}\n"),
    ],
)
def test_hub_says_nothing_once_someone_is_allowed(shipped, tmp_path, setting, value):
    if setting == "HUB_EXTRA_CONFIG":
        extra = tmp_path / "extra_config.py"
        extra.write_text(value)
        value = str(extra)
    shipped.setenv(setting, value)
    assert allow_check_warnings() == []


def test_hub_authenticator_keeps_its_name_and_its_own_checks(shipped):
    from jupyterhub.authenticators.shared import SharedPasswordAuthenticator

    chosen = load_config(CLUSTER_CONFIG).JupyterHub.authenticator_class
    assert issubclass(chosen, SharedPasswordAuthenticator)
    assert (chosen.__module__, chosen.__name__) == ("jupyterhub.authenticators.shared", "SharedPasswordAuthenticator")
    # Admins alone let nobody in; shared-password's own warning about their missing password stays.
    shipped.setenv("HUB_ADMIN_USERS", "root")
    nobody, own = allow_check_warnings()
    assert nobody == NOBODY_ALLOWED and "admin_users set, but SharedPasswordAuthenticator.admin_password is not" in own


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hub_start_up_log(tmp_path) -> str:
    """What the real cluster hub logs until its users are loaded (it then waits for its proxy sidecar: absent here)."""
    data = tmp_path / "hub-data"
    data.mkdir()
    env = {
        **os.environ,
        "HUB_DATA_DIR": str(data),
        "HUB_BIND_URL": f"http://127.0.0.1:{free_port()}",
        "HUB_PROXY_API_URL": f"http://127.0.0.1:{free_port()}",
        "CONFIGPROXY_AUTH_TOKEN": "the-sidecar-token",
        "HUB_CULL_TIMEOUT": "0",
    }
    hub = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(CLUSTER_CONFIG)],
        cwd=data,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watchdog = threading.Timer(90, hub.kill)
    watchdog.start()
    lines = []
    try:
        for line in hub.stdout:
            lines.append(line)
            if re.search(r"Initialized \d+ spawners", line):
                break
    finally:
        watchdog.cancel()
        hub.kill()
        hub.wait()
        hub.stdout.close()
    log = "".join(lines)
    assert "Initialized" in log, log
    return log


def test_real_hub_as_shipped_logs_the_line_once_and_not_jupyterhubs_four(shipped, tmp_path):
    log = hub_start_up_log(tmp_path)
    said = [line for line in log.splitlines() if NOBODY_ALLOWED in line]
    assert len(said) == 1 and said[0].startswith("[W "), log
    assert "No allow config found" not in log


@pytest.mark.skipif(not HAVE_KUBECTL, reason="kubectl is not installed (needed for `kubectl kustomize`)")
def test_docs_overlay_lets_the_listed_users_in_and_the_line_goes(shipped, tmp_path):
    """docs/hub.md step 3's overlay, rendered: the hub gets the list and says nothing more."""
    guide = (REPO / "docs" / "hub.md").read_text()
    (snippet,) = [
        block
        for block in re.findall(r"```yaml\n(.*?)```", guide, re.S)
        if "behavior: merge" in block and "HUB_ALLOWED_USERS" in block
    ]
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {os.path.relpath(K8S_DIR, overlay)}\n{snippet}"
    )
    settings = one(render(overlay), "ConfigMap", "tf-hub-settings")["data"]
    assert settings == {**shipped_settings(), "HUB_ALLOWED_USERS": "alice,bob"}
    for name, value in settings.items():
        shipped.setenv(name, value)
    assert load_config(CLUSTER_CONFIG).Authenticator.allowed_users == {"alice", "bob"}
    log = hub_start_up_log(tmp_path)
    assert NOBODY_ALLOWED not in log and "No allow config found" not in log
