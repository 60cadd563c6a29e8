"""Run ``kubeflow-jupyter serve`` as a background process owned by this one (the kernel).

The server runs in its own process group; it is stopped (the whole group) by
:meth:`BackgroundServer.stop` or, at the latest, when this process exits.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..logfold import is_startup_line
from .errors import ServingError

_LISTENING = re.compile(r"gRPC on (\S+):(\d+)(?:, REST on http://(\S+?):(\d+)/)?")
_running: list[BackgroundServer] = []


@dataclass
class BackgroundServer:
    model: str
    base_path: str
    process: subprocess.Popen
    grpc_address: str = ""
    rest_address: str = ""
    output: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        if self in _running:
            _running.remove(self)


def start_server(
    base_path: str | os.PathLike,
    model_name: str,
    *,
    port: int = 9000,
    rest_port: int | None = 8501,
    host: str = "127.0.0.1",
    timeout: float = 120.0,
    extra_args: Sequence[str] = (),
    feature: str = "start_server",
) -> BackgroundServer:
    """Start the server and return once it listens (ServingError with its output if it does not).

    ``extra_args`` go to ``kubeflow-jupyter serve`` as they are (e.g. ``["--max-request-tensor-bytes", "1048576"]``).
    Without the ``[tensorflow]`` extra: :class:`~kubeflow_jupyter.errors.MissingExtra` naming ``feature``
    (what the user asked for), before any process starts. The server's process drops TensorFlow's C++
    start-up lines itself (:mod:`kubeflow_jupyter.extras`): this kernel never imports TensorFlow for it.
    """
    from ..extras import check
    from .cli import SERVER_MODULES

    check(*SERVER_MODULES, feature=feature)
    base = Path(base_path).expanduser()
    if not base.is_dir():
        raise ServingError(
            f"MODEL_BASE_PATH {str(base)!r} is not a directory: give the directory holding the "
            "numbered version directories (e.g. models/digits for models/digits/1/saved_model.pb)"
        )
    argv = [
        sys.executable,
        "-m",
        "kubeflow_jupyter.serving.cli",
        "serve",
        str(base.resolve()),
        "--model-name",
        model_name,
        "--port",
        str(port),
        "--host",
        host,
        "--parent-pid",
        str(os.getpid()),
    ]
    argv += ["--no-rest"] if rest_port is None else ["--rest-port", str(rest_port)]
    argv += list(extra_args)
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    server = BackgroundServer(model_name, str(base), process)
    _running.append(server)
    ready = threading.Event()

    def read_output() -> None:
        for line in process.stdout:
            server.output.append(line.rstrip("\n"))
            del server.output[:-200]  # a long-running server: keep the recent lines only
            if not ready.is_set() and (m := _LISTENING.search(line)):
                grpc_host, grpc_port, rest_host, rest_port_ = m.groups()
                server.grpc_address = f"{_client_host(grpc_host)}:{grpc_port}"
                if rest_port_:
                    server.rest_address = f"{_client_host(rest_host)}:{rest_port_}"
                ready.set()

    threading.Thread(target=read_output, name=f"serve-{model_name}", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.1):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            time.sleep(0.1)  # let the reader take the last lines
            said = "\n".join(line for line in server.output if line.strip() and not is_startup_line(line))[-2000:]
            why = (
                f"did not start within {timeout:g}s"
                if process.returncode in (None, -15)
                else f"exited ({process.returncode})"
            )
            raise ServingError(f"the model server {why}:\n{said}" if said else f"the model server {why}")
    return server


def _client_host(host: str) -> str:
    # A server bound to every address is reached on this machine through loopback.
    return "127.0.0.1" if host in ("0.0.0.0", "[::]") else host


def running_servers() -> list[BackgroundServer]:
    return [s for s in _running if s.running]


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop(timeout=5)
