"""TensorBoard per job: a local TensorBoard process (:class:`TensorBoardManager`), or on a cluster
Kubeflow's ``Tensorboard`` custom resource (:func:`tensorboard_manifest`).

Locally, ``tensorboard --logdir <dir> --host 127.0.0.1 --port <free>`` runs as a child of this
process (the same interpreter: ``python -m tensorboard.main``), once per job: asking again
returns the running one; :meth:`TensorBoardManager.stop` ends it (the job's delete calls it),
and so does this process's exit. Its own address is ``http://127.0.0.1:<port>/``; a browser
that reaches the notebook only through the Jupyter server (JupyterHub, a remote machine)
reaches it through jupyter-server-proxy at ``<base_url>proxy/<port>/``, which is what the
inline iframe uses.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BackendError, OptionError

#: Seconds TensorBoard may take to answer (it imports TensorFlow when installed: ~5-15 s).
START_TIMEOUT = 90.0
#: Seconds between TensorBoard's looks at the logdir for new data (its default is 5).
RELOAD_SECONDS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def notebook_base_url() -> str:
    """The Jupyter server's base URL as seen from a kernel: JupyterHub's prefix, else ``/``."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
    return prefix if prefix.endswith("/") else prefix + "/"


def server_base_url() -> str | None:
    """The base URL of the Jupyter server this kernel runs under, None when there is none (a
    terminal, nbclient): JupyterHub's prefix, else the ``base_url`` of the server that started
    this process (its ``jpserver-<pid>.json`` in the runtime directory, beside the kernel's
    connection file)."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if prefix:
        return prefix if prefix.endswith("/") else prefix + "/"
    dirs: list[Path] = []
    with contextlib.suppress(Exception):
        from ipykernel.connect import get_connection_file

        dirs.append(Path(get_connection_file()).parent)
    with contextlib.suppress(Exception):
        from jupyter_core.paths import jupyter_runtime_dir

        dirs.append(Path(jupyter_runtime_dir()))
    for directory in dirs:
        try:
            info = json.loads((directory / f"jpserver-{os.getppid()}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        base = str(info.get("base_url") or "/") if isinstance(info, dict) else "/"
        return base if base.endswith("/") else base + "/"
    return None


def proxy_base_url() -> str | None:
    """Where an iframe reaches a local TensorBoard through the Jupyter server: the server's base
    URL when this kernel runs under one that has jupyter-server-proxy, else None (use ``.url``)."""
    import importlib.util

    base = server_base_url()
    if base is None or importlib.util.find_spec("jupyter_server_proxy") is None:
        return None
    return base


class TensorBoardUnavailable(BackendError):
    """No TensorBoard can be shown for the job: the message is the one line saying what is missing."""


@dataclass
class TensorBoard:
    """One running TensorBoard: ``url`` is its own address; in a notebook it shows inline."""

    job: str
    logdir: str
    port: int
    process: subprocess.Popen = field(repr=False)
    output: Path = field(repr=False)  # its stdout and stderr
    #: the iframe goes through jupyter-server-proxy (False: straight to ``url``, for a browser on this machine)
    proxied: bool = field(default=True, repr=False)
    #: the Jupyter server's base URL for the proxied address (None: :func:`notebook_base_url`)
    base_url: str | None = field(default=None, repr=False)

    def for_this_kernel(self) -> TensorBoard:
        """Show it the way this kernel's browser reaches it: through the Jupyter server's proxy
        when there is one (:func:`proxy_base_url`), else at its own address."""
        base = proxy_base_url()
        self.proxied, self.base_url = base is not None, base
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def proxied_url(self, base_url: str | None = None) -> str:
        """Its address through the Jupyter server's jupyter-server-proxy: ``<base_url>proxy/<port>/``."""
        base = base_url if base_url is not None else notebook_base_url()
        return f"{base if base.endswith('/') else base + '/'}proxy/{self.port}/"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def _repr_html_(self) -> str:
        src = html.escape(self.proxied_url(self.base_url) if self.proxied else self.url, quote=True)
        return (
            f'<div class="kfj-tensorboard"><div>TensorBoard for TFJob <b>{html.escape(self.job)}</b> '
            f"(logdir <code>{html.escape(self.logdir)}</code>): "
            f'<a href="{src}" target="_blank" rel="noopener">open in a new tab</a> · '
            f"<code>{html.escape(self.url)}</code></div>"
            f'<iframe src="{src}" width="100%" height="640" frameborder="0"></iframe></div>'
        )

    def __repr__(self) -> str:
        state = "running" if self.alive else f"exited {self.process.returncode}"
        return f"<TensorBoard of {self.job!r} at {self.url} ({state}), logdir {self.logdir}>"


class TensorBoardManager:
    """At most one TensorBoard per job in this process; all stopped at exit."""

    def __init__(self, *, start_timeout: float = START_TIMEOUT):
        self.start_timeout = start_timeout
        self._boards: dict[str, TensorBoard] = {}
        self._lock = threading.Lock()
        atexit.register(self.stop_all)

    def get(self, job: str) -> TensorBoard | None:
        board = self._boards.get(job)
        return board if board is not None and board.alive else None

    def start(self, job: str, logdir: str | os.PathLike) -> TensorBoard:
        """The job's TensorBoard: the running one if its logdir is the same, else a new one
        (waits until it answers; BackendError with its last output if it exits or times out)."""
        from ..extras import check

        check("tensorboard", feature="a TensorBoard for a job")
        logdir = str(Path(logdir).resolve())
        with self._lock:
            board = self._boards.get(job)
            if board is not None and board.alive and board.logdir == logdir:
                return board
            if board is not None:
                self._terminate(board)
            Path(logdir).mkdir(parents=True, exist_ok=True)
            board = self._launch(job, logdir)
            self._boards[job] = board
        try:
            self._wait_ready(board)
        except BackendError:
            self.stop(job)
            raise
        return board

    def _launch(self, job: str, logdir: str) -> TensorBoard:
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            logdir,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--reload_interval",
            str(RELOAD_SECONDS),
            "--load_fast",
            "false",  # no separate Rust data server: one process to stop
        ]
        fd, name = tempfile.mkstemp(prefix=f"tensorboard-{job[:40]}-", suffix=".log")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        with os.fdopen(fd, "wb") as output:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: stop ends whatever it started
            )
        return TensorBoard(job, logdir, port, process, Path(name))

    def _wait_ready(self, board: TensorBoard) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if not board.alive:
                raise BackendError(
                    f"TensorBoard for {board.job!r} exited ({board.process.returncode}): {self._tail(board)}"
                )
            try:
                with urllib.request.urlopen(board.url + "data/logdir", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise BackendError(
            f"TensorBoard for {board.job!r} did not answer in {self.start_timeout:.0f} s: {self._tail(board)}"
        )

    @staticmethod
    def _tail(board: TensorBoard) -> str:
        try:
            lines = board.output.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no output)"
        return " / ".join(lines[-3:]) or "(no output)"

    def stop(self, job: str) -> bool:
        """Stop the job's TensorBoard; True if one was running."""
        with self._lock:
            board = self._boards.pop(job, None)
        if board is None:
            return False
        was_alive = board.alive
        self._terminate(board)
        return was_alive

    def stop_all(self) -> None:
        with self._lock:
            boards = list(self._boards.values())
            self._boards.clear()
        for board in boards:
            self._terminate(board)

    @staticmethod
    def _terminate(board: TensorBoard) -> None:
        process = board.process
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        with contextlib.suppress(OSError):
            board.output.unlink()


_manager: TensorBoardManager | None = None
_manager_lock = threading.Lock()


def manager() -> TensorBoardManager:
    """This process's TensorBoardManager (what ``%tfjob tensorboard`` and the job's delete share)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = TensorBoardManager()
        return _manager


# -- on a cluster: Kubeflow's Tensorboard custom resource ------------------------------------
TENSORBOARD_GROUP = "tensorboard.kubeflow.org"
TENSORBOARD_VERSION = "v1alpha1"
TENSORBOARD_API_VERSION = f"{TENSORBOARD_GROUP}/{TENSORBOARD_VERSION}"
_CLAIM = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def parse_pvc_logdir(logdir: str) -> tuple[str, str]:
    """``pvc://CLAIM/SUBPATH`` → (claim, subpath); subpath may be "" (OptionError otherwise)."""
    if not logdir.startswith("pvc://"):
        raise OptionError(f"--logdir on a cluster must be pvc://CLAIM/SUBPATH, got {logdir!r:.80}")
    claim, _, subpath = logdir[len("pvc://") :].partition("/")
    if not _CLAIM.fullmatch(claim):
        raise OptionError(f"--logdir {logdir!r:.80}: {claim!r:.70} is not a PersistentVolumeClaim name")
    parts = [p for p in subpath.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise OptionError(f"--logdir {logdir!r:.80}: the subpath must not hold . or ..")
    return claim, "/".join(parts)


def tensorboard_name(job: str) -> str:
    """The Tensorboard's name: ``<job>-tensorboard``, cut to a DNS label (63) with a hash when long."""
    name = f"{job}-tensorboard"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(job.encode()).hexdigest()[:8]
    return f"{job[: 63 - len('-tb-') - 8].rstrip('-.')}-tb-{digest}"


def tensorboard_manifest(job: str, namespace: str, job_uid: str, logdir: str) -> dict:
    """Kubeflow's ``Tensorboard`` for a TFJob whose logdir is ``pvc://CLAIM/SUBPATH``, owned by the
    TFJob (Kubernetes deletes it with the job)."""
    claim, subpath = parse_pvc_logdir(logdir)
    if not job_uid:
        raise OptionError(f"TFJob {job!r} has no uid yet: the Tensorboard's owner reference needs one")
    return {
        "apiVersion": TENSORBOARD_API_VERSION,
        "kind": "Tensorboard",
        "metadata": {
            "name": tensorboard_name(job),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "kubeflow-jupyter", "kubeflow-jupyter/tfjob": job[:63]},
            "ownerReferences": [
                {
                    "apiVersion": "kubeflow.org/v1",
                    "kind": "TFJob",
                    "name": job,
                    "uid": job_uid,
                    "blockOwnerDeletion": True,
                    "controller": False,
                }
            ],
        },
        "spec": {"logspath": f"pvc://{claim}/{subpath}" if subpath else f"pvc://{claim}"},
    }


def tensorboard_url(namespace: str, name: str) -> str:
    """Where Kubeflow's central dashboard serves a Tensorboard (its controller's VirtualService prefix)."""
    return f"/tensorboard/{namespace}/{name}/"


def tensorboard_crd_installed(discovery: dict) -> bool:
    """Whether the cluster serves ``tensorboard.kubeflow.org/v1alpha1``, given an API discovery
    response: ``GET /apis`` (an APIGroupList), ``GET /apis/tensorboard.kubeflow.org`` (an
    APIGroup) or ``GET /apis/tensorboard.kubeflow.org/v1alpha1`` (an APIResourceList)."""
    kind = discovery.get("kind")
    if kind == "APIResourceList":
        return discovery.get("groupVersion") == TENSORBOARD_API_VERSION and any(
            r.get("kind") == "Tensorboard" for r in discovery.get("resources") or []
        )
    groups = discovery.get("groups") if kind == "APIGroupList" else [discovery] if kind == "APIGroup" else []
    for group in groups or []:
        if group.get("name") == TENSORBOARD_GROUP:
            return any(v.get("groupVersion") == TENSORBOARD_API_VERSION for v in group.get("versions") or [])
    return False


def missing_for_cluster_tensorboard(logdir: str | None, discovery: dict) -> str | None:
    """None when a Tensorboard can be created for the job, else the one line saying what is missing."""
    if not logdir:
        return "this TFJob has no logdir: submit it with --logdir pvc://CLAIM/SUBPATH to get a TensorBoard"
    if not logdir.startswith("pvc://"):
        return f"this TFJob's logdir {logdir!r:.80} is not a PersistentVolumeClaim (pvc://CLAIM/SUBPATH)"
    if not tensorboard_crd_installed(discovery):
        return (
            f"Kubeflow's Tensorboard CRD ({TENSORBOARD_API_VERSION}) is not installed on this cluster: "
            "install Kubeflow's tensorboard-controller, or read the logdir with %tfjob metrics"
        )
    return None


@dataclass
class ClusterTensorBoard:
    """Kubeflow's ``Tensorboard`` of a TFJob on a cluster: ``url`` is where Kubeflow's dashboard serves it."""

    job: str
    namespace: str
    name: str
    logdir: str
    created: bool  # False: it existed already (asked again)

    @property
    def url(self) -> str:
        return tensorboard_url(self.namespace, self.name)

    def _repr_html_(self) -> str:
        url = html.escape(self.url, quote=True)
        return (
            f'<div class="kfj-tensorboard">Kubeflow Tensorboard <code>{html.escape(self.name)}</code> for TFJob '
            f"<b>{html.escape(self.job)}</b> (logs {html.escape(self.logdir)}): "
            f'<a href="{url}" target="_blank" rel="noopener">{url}</a> on the Kubeflow dashboard</div>'
        )

    def __repr__(self) -> str:
        state = "created" if self.created else "exists"
        return (
            f"<Tensorboard {self.namespace}/{self.name} of TFJob {self.job!r} ({state}): {self.url} "
            f"on the Kubeflow dashboard, logs {self.logdir}>"
        )
