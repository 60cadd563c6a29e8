"""The local stack end to end: real JupyterHub, real configurable-http-proxy, real JupyterLab server.

Start it with the launcher (`make run`'s command), log in with the shared password
through the login form, get a token from the REST API, spawn a server, run a
notebook's cells in that server's kernel over the Jupyter Server REST + websocket
API (`%load_ext kubeflow_jupyter`, `%%tfjob submit` of a tiny job on the local
backend, wait, logs, delete), press Ctrl-C with the server still running, and check
that the stop is clean and nothing the launcher started is left running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import websocket
from hub_support import REPO

USER = "ada"
PASSWORD = "e2e-shared-secret"
PROXY = REPO / ".cache" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"

# Two workers that print their TF_CONFIG task and working directory: no TensorFlow, so it is quick.
JOB_YAML = """\
apiVersion: kubeflow.org/v1
kind: TFJob
metadata:
  name: placeholder
spec:
  tfReplicaSpecs:
    Worker:
      replicas: 2
      template:
        spec:
          containers:
            - name: tensorflow
              image: python:3.11
              command: ["python", "-c", "import json, os; print('task', json.loads(os.environ['TF_CONFIG'])['task'], 'in', os.getcwd())"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address if width == 8 else f"v6:{address}")
    return found


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Kernel:
    """A kernel of the spawned server, driven over the Jupyter Server websocket (JSON protocol)."""

    def __init__(self, base: str, token: str):
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"
        self.base = base
        # A notebook session, as JupyterLab opens one: the kernel starts in the notebook's folder.
        reply = self.http.post(
            f"{base}/api/sessions",
            json={"path": "hub-e2e.ipynb", "name": "hub-e2e.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
            timeout=60,
        )
        reply.raise_for_status()
        self.session_id = reply.json()["id"]
        self.id = reply.json()["kernel"]["id"]
        ws_url = base.replace("http://", "ws://") + f"/api/kernels/{self.id}/channels"
        self.ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=240)
        self.session = uuid.uuid4().hex

    def run(self, code: str) -> dict[str, str]:
        """Execute one cell; return its stdout, stderr, rich text output and error, as the notebook shows them."""
        msg_id = uuid.uuid4().hex
        self.ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "session": self.session,
                        "username": USER,
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "buffers": [],
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        out = {"stdout": "", "stderr": "", "text": "", "error": ""}
        replied = idle = False
        while not (replied and idle):
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind in ("execute_result", "display_data"):
                out["text"] += content["data"].get("text/plain", "") + "\n"
            elif kind == "error":
                out["error"] += f"{content['ename']}: {content['evalue']}"
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        return out

    def close(self) -> None:
        self.ws.close()
        self.http.delete(f"{self.base}/api/sessions/{self.session_id}", timeout=30)


@pytest.fixture(scope="module")
def local_hub(tmp_path_factory):
    if not PROXY.exists():
        pytest.fail("configurable-http-proxy is missing: run `make proxy` (npm install into .cache/node)")
    state = tmp_path_factory.mktemp("hub-state")
    jobs_home = tmp_path_factory.mktemp("hub-jobs")
    os.chmod(jobs_home, 0o777)  # the notebook server may run as an unprivileged account
    ports = {"HUB_PORT": free_port(), "HUB_API_PORT": free_port(), "HUB_PROXY_API_PORT": free_port()}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HUB_")},
        **{k: str(v) for k, v in ports.items()},
        "HUB_STATE_DIR": str(state),
        "HUB_USER": USER if os.geteuid() != 0 else "",
        "HUB_PASSWORD": PASSWORD,
        "KUBEFLOW_JUPYTER_HOME": str(jobs_home),
    }
    env = {k: v for k, v in env.items() if v != ""}
    log = (state / "launcher.log").open("w")
    # Its own process group, as a shell gives a command: Ctrl-C is SIGINT to that group.
    launcher = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub_config.run_local", "--no-model-server"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{ports['HUB_PORT']}"
    deadline = time.monotonic() + 120
    banner = ""
    while "JupyterHub is up" not in banner:
        assert launcher.poll() is None, (state / "launcher.log").read_text()
        assert time.monotonic() < deadline, "the launcher did not report the hub up in 120s"
        time.sleep(0.5)
        banner = (state / "launcher.log").read_text()
    yield {"url": url, "launcher": launcher, "log": state / "launcher.log", "ports": ports, "banner": banner}
    if launcher.poll() is None:  # a failed test: stop the stack the way Ctrl-C does, so nothing is orphaned
        launcher.send_signal(signal.SIGTERM)
        try:
            launcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()


def login(url: str, user: str, password: str) -> requests.Session:
    """Log in through the hub's login form, as a browser does."""
    web = requests.Session()
    web.get(f"{url}/hub/login", timeout=30).raise_for_status()
    reply = web.post(
        f"{url}/hub/login",
        data={"username": user, "password": password, "_xsrf": web.cookies.get("_xsrf", "")},
        allow_redirects=False,
        timeout=30,
    )
    assert reply.status_code == 302, reply.text[:500]
    return web


def test_hub_local_stack_login_spawn_run_tfjob_stop(local_hub):
    url, launcher = local_hub["url"], local_hub["launcher"]
    banner = local_hub["banner"]
    user = banner.split("user:", 1)[1].split()[0]
    assert f"JupyterHub is up: {url}" in banner and PASSWORD in banner
    # Nothing asked the proxy for the hub before the hub was there (its 404 comes with a stack trace).
    for noise in ("[ConfigProxy]", "ECONNREFUSED", "Traceback", "[E "):
        assert noise not in banner, banner
    # Loopback only: the proxy's public port and the hub API.
    for port in (local_hub["ports"]["HUB_PORT"], local_hub["ports"]["HUB_API_PORT"]):
        assert listening_addresses(port) == {"0100007F"}, f"port {port} listens on {listening_addresses(port)}"

    # A wrong password is refused; the right one gets a session cookie.
    with pytest.raises(AssertionError):
        login(url, user, "wrong-password")
    web = login(url, user, PASSWORD)
    reply = web.post(
        f"{url}/hub/api/users/{user}/tokens",
        json={"note": "hub e2e test", "expires_in": 900},
        headers={"X-XSRFToken": web.cookies.get("_xsrf", "")},
        timeout=30,
    )
    assert reply.status_code == 201, reply.text
    token = reply.json()["token"]
    api = requests.Session()
    api.headers["Authorization"] = f"token {token}"

    # Spawn through the REST API and wait until the hub says the server is ready.
    reply = api.post(f"{url}/hub/api/users/{user}/server", timeout=60)
    assert reply.status_code in (201, 202), reply.text
    deadline = time.monotonic() + 240
    while True:
        model = api.get(f"{url}/hub/api/users/{user}", timeout=30).json()
        server = model["servers"].get("", {})
        if server.get("ready"):
            break
        assert time.monotonic() < deadline, f"server not ready: {model}\n{local_hub['log'].read_text()[-3000:]}"
        time.sleep(1)
    server_url = f"{url}{server['url'].rstrip('/')}"
    assert server["url"] == f"/user/{user}/"
    lab = api.get(f"{server_url}/lab", timeout=60)
    assert lab.status_code == 200 and "JupyterLab" in lab.text

    kernel = Kernel(server_url, token)
    try:
        first = kernel.run(
            "%load_ext kubeflow_jupyter\nimport os\n"
            "print(os.environ['KUBEFLOW_JUPYTER_BACKEND'], os.geteuid(), os.environ['KUBEFLOW_JUPYTER_MODEL_SERVER'], os.getcwd())"
        )
        assert not first["error"], first
        backend, uid, model_server, notebook_dir = first["stdout"].split()
        assert backend == "local"
        assert model_server == "127.0.0.1:9000"
        from jupyterhub_config.run_local import interpreter_usable_unprivileged

        # Root only when no unprivileged account could run this Python (and the launcher said so).
        assert (uid == "0") == (os.geteuid() == 0 and not interpreter_usable_unprivileged())
        if uid == "0":
            assert "notebook servers will run as root" in local_hub["log"].read_text()

        name = f"hub-e2e-{uuid.uuid4().hex[:6]}"
        submitted = kernel.run(f"%%tfjob submit --name {name}\n{JOB_YAML}")
        assert not submitted["error"], submitted
        assert name in submitted["stdout"] + submitted["text"]
        waited = kernel.run(f"%tfjob wait {name} --timeout 180")
        assert not waited["error"] and not waited["stderr"], waited
        assert "Succeeded" in waited["stdout"] + waited["text"], waited
        # Worker 0 decides success (the operator's default success policy): its log is complete.
        logs = kernel.run(f"%tfjob logs {name} --replica worker-0")
        # ... and it ran next to the notebook, like a job submitted from JupyterLab.
        assert f"task {{'type': 'worker', 'index': 0}} in {notebook_dir}" in logs["stdout"] + logs["text"], logs
        deleted = kernel.run(f"%tfjob delete {name}")
        assert not deleted["error"], deleted
    finally:
        kernel.close()

    # The idle culler, a hub service holding only its four scopes, could list users and servers.
    assert "200 GET /hub/api/users?state=[secret] (jupyterhub-idle-culler@127.0.0.1)" in local_hub["log"].read_text()

    # Ctrl-C in the terminal, the notebook server still running: the hub stops it, once, cleanly.
    started = descendants(launcher.pid)
    assert started, "the launcher has no child processes"
    logged = len(local_hub["log"].read_text())
    os.killpg(launcher.pid, signal.SIGINT)
    assert launcher.wait(timeout=60) == 0
    stop = local_hub["log"].read_text()[logged:]
    assert stop.count("initiating shutdown") == 1, stop
    for noise in ("Failed to stop", "Task was destroyed", "Traceback", "[E ", "error"):
        assert noise not in stop, stop
    leftovers = [pid for pid in started if alive(pid)]
    assert not leftovers, f"still running after stop: {leftovers}"
