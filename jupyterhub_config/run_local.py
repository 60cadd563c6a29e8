"""The whole stack on one machine: the model server and JupyterHub (``make run``).

    python -m jupyterhub_config.run_local [--no-model-server]

1. checks that configurable-http-proxy is installed (``make`` puts it in .cache/node);
2. when started as root, makes sure the unprivileged account notebooks run as exists
   and has a workspace holding a copy of examples/ (see local_config.py for why);
3. makes sure the digits model is exported (trains it with the digits TFJob through
   TFJobClient when it is missing) and serves it with ``kubeflow-jupyter serve``;
4. starts JupyterHub with local_config.py, waits until it answers, prints the URL
   and the credentials, and stops everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

from jupyterhub_config.hubconf import LOCAL_HUB_PORT, LOCAL_PROXY_API_PORT, ROOT_HUB_USER
from kubeflow_jupyter.logfold import is_startup_line

REPO = Path(__file__).resolve().parent.parent
LOCAL_CONFIG = REPO / "jupyterhub_config" / "local_config.py"
BUNDLED_PROXY = REPO / ".cache" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
DIGITS_EXAMPLE = REPO / "examples" / "digits"
WORKSPACE_NAME = "kubeflow-jupyter"


class LaunchError(Exception):
    """Something to fix before the stack can start; the message says what."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while starting up."""


STOPPING = threading.Event()  # set by SIGINT/SIGTERM


def interpreter_usable_unprivileged() -> bool:
    """Can an account other than root run this Python? Not when it lives under a mode-700 /root (pyenv as root)."""
    nobody = pwd.getpwnam("nobody")
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import jupyterhub, kubeflow_jupyter"],
            user=nobody.pw_uid,
            group=nobody.pw_gid,
            extra_groups=[],
            cwd="/",
            capture_output=True,
        )
    except PermissionError:  # the interpreter itself cannot be executed
        return False
    return probe.returncode == 0


def check_proxy() -> None:
    command = os.environ.get("HUB_PROXY_COMMAND") or (str(BUNDLED_PROXY) if BUNDLED_PROXY.exists() else "")
    if not command or not shutil.which(command):
        raise LaunchError(
            "configurable-http-proxy is not installed: run `make proxy` (npm installs it into .cache/node) "
            "or point $HUB_PROXY_COMMAND at one"
        )


def ensure_account(name: str) -> pwd.struct_passwd:
    """The unprivileged system account notebook servers run as when the hub is root."""
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        print(f"creating the unprivileged account {name!r} for notebook servers (the hub runs as root)", flush=True)
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
        account = pwd.getpwnam(name)
    if account.pw_uid == 0:
        raise LaunchError(f"HUB_USER={name!r} is root: notebook servers must run as an unprivileged account")
    return account


def ensure_workspace(account: pwd.struct_passwd) -> Path:
    """A copy of examples/ the account owns, so notebooks can be run and saved; user edits are kept."""
    workspace = Path(account.pw_dir) / WORKSPACE_NAME
    for source in sorted((REPO / "examples").rglob("*")):
        target = workspace / "examples" / source.relative_to(REPO / "examples")
        if "__pycache__" in source.parts or target.exists():
            continue
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for path in [workspace, *workspace.rglob("*")]:
        os.chown(path, account.pw_uid, account.pw_gid)
    return workspace


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen, what: str, where: str, timeout: float) -> None:
    """Poll ``ready()`` (a refused or failing request counts as not ready) until it is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if STOPPING.is_set():
            raise Interrupted()
        if proc.poll() is not None:
            raise LaunchError(f"{what} exited with code {proc.returncode} (its messages are above)")
        try:
            if ready():
                return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        STOPPING.wait(0.5)
    raise LaunchError(f"{what} did not answer at {where} within {timeout:.0f}s")


def answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2):
        return True


def wait_for_http(url: str, proc: subprocess.Popen, what: str, timeout: float) -> None:
    wait_until(lambda: answers(url), proc, what, url, timeout)


def wait_for_hub(proc: subprocess.Popen, env: dict, timeout: float) -> str:
    """The hub's public URL, once the proxy routes it to the hub.

    Asked any earlier, the proxy answers 404 and fetches its error page from the hub,
    which is not listening yet: a stack trace in the terminal. The proxy's own API
    (with the token the launcher gave both) says when the hub's route is in.
    """
    routes = f"http://127.0.0.1:{env.get('HUB_PROXY_API_PORT') or LOCAL_PROXY_API_PORT}/api/routes"
    token = env["CONFIGPROXY_AUTH_TOKEN"]

    def hub_routed() -> bool:
        request = urllib.request.Request(routes, headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=2) as reply:
            return "/" in json.load(reply)

    wait_until(hub_routed, proc, "JupyterHub", routes, timeout)
    url = f"http://127.0.0.1:{env.get('HUB_PORT') or LOCAL_HUB_PORT}"
    wait_for_http(f"{url}/hub/health", proc, "JupyterHub", timeout)
    return url


def forward_without_tensorflow_notices(source: IO[bytes], target: IO[str]) -> None:
    """Copy a child's output line by line, leaving out TensorFlow's start-up notices; ends at EOF."""
    for raw in iter(source.readline, b""):
        line = raw.decode(errors="replace")
        if not is_startup_line(line):
            target.write(line)
            target.flush()
    source.close()


def relay_without_tensorflow_notices(source: IO[bytes], target: IO[str]) -> threading.Thread:
    relay = threading.Thread(target=forward_without_tensorflow_notices, args=(source, target), daemon=True)
    relay.start()
    return relay


def die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the launcher dies, even by SIGKILL (Linux), so nothing is orphaned."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Stack:
    """Child processes started in order and stopped in reverse order."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, what: str, argv: list[str], **kwargs) -> subprocess.Popen:
        # A session of its own: Ctrl-C in the terminal reaches only the launcher, which stops
        # each child once. JupyterHub hit by the terminal's SIGINT and then the launcher's
        # SIGTERM ran its shutdown twice: "Failed to stop user: ''", "Task was destroyed".
        proc = subprocess.Popen(argv, preexec_fn=die_with_parent, start_new_session=True, **kwargs)
        self.procs.append((what, proc))
        return proc

    def stop(self, grace: float = 20.0) -> None:
        for what, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()  # JupyterHub stops its proxy and the notebook servers on SIGTERM
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    print(f"{what} did not stop within {grace:.0f}s: killing it", file=sys.stderr)
                    proc.kill()
                    proc.wait()
        self.procs.clear()


def as_account(account: pwd.struct_passwd | None) -> dict:
    """Popen arguments that run a child as ``account``, with none of root's groups; {} for the hub's own user."""
    if account is None:
        return {}
    env = dict(os.environ, HOME=account.pw_dir, USER=account.pw_name)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": [], "env": env}


def start_model_server(stack: Stack, account: pwd.struct_passwd | None) -> str | None:
    """Serve the digits model if it can be had; the hub is useful without it, so problems are reported, not fatal."""
    from jupyterhub_config.digits_model import ModelUnavailable, ensure_digits_export

    try:
        base_path = ensure_digits_export(REPO / ".cache" / "models" / "digits")
    except ModelUnavailable as e:
        print(f"model server not started: {e}", file=sys.stderr, flush=True)
        return None
    port = os.environ.get("HUB_MODEL_SERVER_PORT", "9000")
    rest_port = os.environ.get("HUB_MODEL_SERVER_REST_PORT", "8501")
    argv = [
        sys.executable,
        "-m",
        "kubeflow_jupyter.cli",
        "serve",
        str(base_path),
        "--model-name",
        "digits",
        "--port",
        port,
        "--rest-port",
        rest_port,
    ]
    proc = stack.start("model server", argv, cwd=REPO, stderr=subprocess.PIPE, **as_account(account))
    relay = relay_without_tensorflow_notices(proc.stderr, sys.stderr)
    try:
        wait_for_http(f"http://127.0.0.1:{rest_port}/v1/models/digits", proc, "the model server", timeout=180)
    except LaunchError:
        relay.join(5)  # its last words belong above the error that points at them
        raise
    return f"127.0.0.1:{port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jupyterhub_config.run_local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-model-server", action="store_true", help="start only JupyterHub")
    args = parser.parse_args(argv)

    stack = Stack()

    def request_stop(signum, frame) -> None:
        STOPPING.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        check_proxy()
        env = dict(os.environ)
        account = None
        if os.geteuid() == 0 and not env.get("HUB_NOTEBOOK_AS_ROOT"):
            if interpreter_usable_unprivileged():
                account = ensure_account(env.setdefault("HUB_USER", ROOT_HUB_USER))
                env.setdefault("HUB_NOTEBOOK_DIR", str(ensure_workspace(account)))
            else:
                print(
                    f"warning: notebook servers will run as root: no unprivileged account can run {sys.executable} "
                    f"(it resolves to {os.path.realpath(sys.executable)}, behind a directory only root may enter). "
                    "Use a Python installed outside /root to run them as an unprivileged user.",
                    file=sys.stderr,
                    flush=True,
                )
                env["HUB_NOTEBOOK_AS_ROOT"] = "true"
        user = env.setdefault("HUB_USER", pwd.getpwuid(os.geteuid()).pw_name)
        env["HUB_PASSWORD"] = os.environ.get("HUB_PASSWORD") or secrets.token_urlsafe(12)
        model_server = None
        if not args.no_model_server:
            model_server = start_model_server(stack, account)
            if model_server:
                env["HUB_MODEL_SERVER"] = model_server
        # The hub hands this token to the proxy it starts; the launcher reads the proxy's routes with it.
        env["CONFIGPROXY_AUTH_TOKEN"] = env.get("CONFIGPROXY_AUTH_TOKEN") or secrets.token_hex(32)
        hub = stack.start(
            "JupyterHub", [sys.executable, "-m", "jupyterhub", "-f", str(LOCAL_CONFIG)], cwd=REPO, env=env
        )
        url = wait_for_hub(hub, env, timeout=120)
        print(
            f"\nJupyterHub is up: {url}\n"
            f"  user:     {user}\n  password: {env['HUB_PASSWORD']}\n"
            + (f"  model server (digits): {model_server}\n" if model_server else "")
            + "Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while not STOPPING.wait(1.0):
            for what, proc in stack.procs:
                if proc.poll() is not None:
                    raise LaunchError(f"{what} exited with code {proc.returncode}")
        return 0
    except LaunchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Interrupted:
        return 130
    finally:
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
