"""A local model server that speaks TensorFlow Serving's gRPC and REST APIs: starting and stopping it.

    kubeflow-jupyter serve ./export --model-name digits      # gRPC :9000, REST :8501

:class:`ModelServer` puts one model store (:mod:`.model_store`) behind one core
(:mod:`.core`), and the core behind both transports: gRPC (:mod:`.grpc_service`)
and REST (:mod:`.rest_service` on the :mod:`.httpd` front end). :func:`serve` runs
it in the foreground (the ``serve`` command, ``%model serve``'s process). Like TF
Serving the API has no authentication, so the server binds 127.0.0.1 unless told
otherwise.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..extras import require

# This module is the model server: without the [tensorflow] extra, one line naming it (and TensorFlow
# loaded quietly) rather than a ModuleNotFoundError from the first module below that imports it.
require("tensorflow", "tensorflow_serving.apis", "grpc", feature="the model server (kubeflow_jupyter.serving.server)")

from . import httpd, tensors  # noqa: E402
from .core import ModelServerCore  # noqa: E402
from .grpc_service import add_services, grpc_message_limit, grpc_server  # noqa: E402
from .model_store import ModelStore  # noqa: E402
from .rest_service import RestApi, rest_app  # noqa: E402

#: Like TF Serving's API, this one has no authentication: only this machine can reach it unless told otherwise.
DEFAULT_HOST = "127.0.0.1"


def configure_tensorflow(intra_op: int = 1, inter_op: int = 0) -> None:
    """TF Serving's --tensorflow_intra_op_parallelism / --tensorflow_inter_op_parallelism.

    Must run before TensorFlow executes anything in this process; model versions
    loaded afterwards use these in their sessions. ``intra_op`` 0 lets TensorFlow
    pick (one per core); ``inter_op`` 0 runs a request's ops in its own thread (see
    ``SessionBundle``). Requests already run side by side (the thread pool,
    batching), so handing each op to other threads and back only costs: on 2 cores
    the digits model's p50 latency was about 2x worse with TensorFlow's choice, and
    Inception v3 was no faster.
    """
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    tf.config.threading.set_inter_op_parallelism_threads(inter_op)


class ModelServer:
    """gRPC + REST over one ModelStore. ``start()`` returns once the latest version is loaded.

    Limits (see docs/serving.md, "Limits"): ``max_request_tensor_bytes`` for what a
    request's input tensors may take once decoded (gRPC messages may be 4x that);
    REST: ``rest_threads`` workers, ``rest_timeout`` seconds for a request to
    arrive, ``rest_max_connections`` open at once, ``rest_max_body_bytes`` per body.
    """

    def __init__(
        self,
        model_base_path: str | Path,
        model_name: str,
        *,
        host: str = DEFAULT_HOST,
        port: int = 9000,
        rest_port: int | None = 8501,
        labels: dict[str, int] | None = None,
        poll_seconds: float = 1.0,
        workers: int = 16,
        batching: bool = True,
        batch_timeout: float = 0.001,
        announce: Callable[[str], None] | None = None,
        max_request_tensor_bytes: int = tensors.DEFAULT_MAX_REQUEST_TENSOR_BYTES,
        rest_threads: int | None = None,
        rest_timeout: float = httpd.DEFAULT_TIMEOUT,
        rest_max_connections: int = httpd.DEFAULT_MAX_CONNECTIONS,
        rest_max_body_bytes: int = httpd.DEFAULT_MAX_BODY_BYTES,
    ):
        self.announce = announce or (lambda message: print(message, flush=True))
        self.store = ModelStore(
            model_name,
            model_base_path,
            labels=labels,
            poll_seconds=poll_seconds,
            on_change=self.announce,
            batching=batching,
            batch_timeout=batch_timeout,
        )
        self.core = ModelServerCore(self.store, max_request_tensor_bytes=max_request_tensor_bytes)
        self.host = host
        self._grpc = grpc_server(workers, grpc_message_limit(max_request_tensor_bytes))
        add_services(self._grpc, self.core)
        self.port = self._grpc.add_insecure_port(f"{_bracket(host)}:{port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {host}:{port} for gRPC (in use?)")
        self._rest: httpd.HttpServer | None = None
        if rest_port is not None:
            self._rest = httpd.HttpServer(
                host,
                rest_port,
                rest_app(RestApi(self.core)),
                threads=rest_threads,
                timeout=rest_timeout,
                max_connections=rest_max_connections,
                max_body_bytes=rest_max_body_bytes,
            )
        self.rest_port = self._rest.port if self._rest else None

    def start(self) -> ModelServer:
        self.store.start()
        self._grpc.start()
        if self._rest is not None:
            self._rest.start()
        rest = (
            f", REST on http://{_bracket(self.host)}:{self.rest_port}/v1/models/{self.store.name}" if self._rest else ""
        )
        versions = self.store.available()
        what = f"versions {', '.join(map(str, versions))}" if versions else "no version yet: waiting for one to appear"
        self.announce(
            f"serving model {self.store.name!r} from {self.store.base_path} ({what}); "
            f"gRPC on {_bracket(self.host)}:{self.port}{rest}"
        )
        return self

    def stop(self, grace: float = 1.0) -> None:
        self.store.stop()
        if self._rest is not None:
            self._rest.stop()
        self._grpc.stop(grace).wait()

    def wait(self) -> None:
        self._grpc.wait_for_termination()


def _stop_when_gone(pid: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        if os.getppid() != pid:  # reparented: the process that started us has ended (even by SIGKILL)
            stop.set()


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve(
    model_base_path: str,
    model_name: str,
    *,
    parent_pid: int | None = None,
    intra_op: int = 1,
    inter_op: int = 0,
    **options: Any,
) -> int:
    """Run in the foreground until interrupted (the ``serve`` command), or until ``parent_pid`` is gone.
    ``intra_op``, ``inter_op``: :func:`configure_tensorflow`'s; ``options``: :class:`ModelServer`'s."""
    import signal

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    host = options.get("host", DEFAULT_HOST)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: listening on {host}: the TF Serving API has no authentication, anyone who can reach "
            "this address can query the model",
            file=sys.stderr,
        )
    configure_tensorflow(intra_op, inter_op)
    try:
        server = ModelServer(model_base_path, model_name, **options).start()
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if parent_pid:
        threading.Thread(target=_stop_when_gone, args=(parent_pid, stop), daemon=True).start()
    stop.wait()
    server.stop()
    return 0
