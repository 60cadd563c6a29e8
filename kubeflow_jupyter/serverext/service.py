"""What the REST handlers share: one TFJobClient, a thread pool for its blocking calls, the feed.

The client is created lazily on first use (in a worker thread: choosing the
Kubernetes backend imports the kubernetes client) with the same selection as the
magics: ``TFJobClient()`` → ``$KUBEFLOW_JUPYTER_BACKEND`` or auto-detection; the
server's configuration (:class:`kubeflow_jupyter.serverext.KubeflowJupyter`) adds the
Kubernetes tunables through ``client_factory`` and the feed's ``resync_seconds``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..client import TFJobClient
from .feed import RESYNC_SECONDS, JobFeed

T = TypeVar("T")

# Enough for a few users clicking around; long-lived streams use their own threads.
MAX_WORKERS = 4
#: Live log streams open at once on this server (each holds a thread and a follow on the
#: backend). Per server rather than per user: a Jupyter server has one user (JupyterHub
#: spawns one per user), and token-authenticated clients get a new anonymous identity
#: with every request, so a per-user count would not bind them.
MAX_LOG_STREAMS = 32


class StreamSlots:
    """Counts open streams; ``acquire`` refuses (with the message to send) past the limit."""

    def __init__(self, limit: int = MAX_LOG_STREAMS):
        self.limit = limit
        self._open = 0
        self._lock = threading.Lock()

    def acquire(self) -> str | None:
        """Take a slot: None, or why not (a 429's message)."""
        with self._lock:
            if self._open >= self.limit:
                return (
                    f"too many open log streams on this server ({self.limit}): "
                    "close a log viewer (or another browser tab) and try again"
                )
            self._open += 1
            return None

    def release(self) -> None:
        with self._lock:
            self._open = max(self._open - 1, 0)

    @property
    def open(self) -> int:
        return self._open


class JobService:
    def __init__(
        self, client_factory: Callable[[], TFJobClient] = TFJobClient, *, resync_seconds: float = RESYNC_SECONDS
    ):
        self._client_factory = client_factory
        self._client: TFJobClient | None = None
        self._client_lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="kubeflow-jupyter")
        self.feed = JobFeed(self.client, resync_seconds=resync_seconds)
        self.log_streams = StreamSlots()
        self._metrics = None

    @property
    def metrics(self):
        """The live metrics followers behind ``jobs/<name>/metrics`` (:class:`~..metrics.live.MetricsRegistry`)."""
        if self._metrics is None:
            from ..metrics.live import MetricsRegistry

            self._metrics = MetricsRegistry(self.client)
        return self._metrics

    def forget_metrics(self, name: str) -> None:
        """The job was deleted: stop following its metrics."""
        if self._metrics is not None:
            self._metrics.forget(name)

    def client(self) -> TFJobClient:
        """The shared client; blocking (may import the kubernetes client): call from a worker thread."""
        with self._client_lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``client.<method>(*args, **kwargs)`` in the pool so the IOLoop never blocks."""

        def run() -> Any:
            return getattr(self.client(), method)(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self.executor, run)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run any blocking function (e.g. draining a log iterator) in the pool."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
