"""One watch of the whole namespace, shared by every open sidebar (the push channel's source).

``TFJobClient.watch()`` is a blocking iterator, so it runs in a thread; each
snapshot is handed to the asyncio loop, which owns all state here: the newest
state of every job and the subscribers' queues. A state reaches the cache (and the
subscribers) only when it supersedes the one held (``tfjob.status.supersedes``:
resourceVersion order, uid for a recreated job), and a deleted job's uid is
remembered, so no late update (a submit's first state, a resync's older list) turns
a job back. Everything a subscriber receives after its first ``jobs`` event is
therefore newer than that event.

The watch is restarted every ``resync_seconds`` (``c.KubeflowJupyter.resync_seconds``,
default ``RESYNC_SECONDS``) after a fresh ``list()``; the
diff against the cache catches what a watch cannot see (a job deleted from
another process) and recovers from a dropped cluster watch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import KubeflowJupyterError
from ..tfjob.status import JobSnapshot, supersedes
from .wire import job_json, job_summary

log = logging.getLogger(__name__)

RESYNC_SECONDS = 15.0
MAX_RETRY_SECONDS = 30.0

Event = tuple[str, Any]  # (event name, JSON-able data)


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)


#: How many deleted jobs' uids the feed remembers, so that a late update cannot revive them.
MAX_TOMBSTONES = 10_000


class JobFeed:
    """The newest state of every job, ordered by :func:`supersedes`; fans changes out to subscribers."""

    def __init__(self, client_provider: Callable[[], Any], *, resync_seconds: float = RESYNC_SECONDS):
        self._client_provider = client_provider
        self.resync_seconds = resync_seconds
        self._subscribers: list[Subscription] = []
        self._jobs: dict[str, JobSnapshot] = {}
        self._json: dict[str, dict] = {}  # job name -> the JSON last sent for it
        self._known_since: dict[str, float] = {}  # job name -> when (monotonic) it entered the cache
        self._deleted_uids: dict[str, None] = {}  # insertion-ordered set, oldest first
        self._ready = False
        self._stop: threading.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- called on the loop ------------------------------------------------
    def subscribe(self) -> Subscription:
        sub = Subscription()
        self._subscribers.append(sub)
        if self._ready:
            sub.queue.put_nowait(self._all_jobs_event())
        if self._stop is None:
            self._start()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
        if not self._subscribers and self._stop is not None:
            # Nobody is looking: stop watching (the thread ends within the watch's ~0.1 s tick).
            self._stop.set()
            self._stop = None
            self._ready = False
            self._jobs.clear()
            self._json.clear()
            self._known_since.clear()

    def update(self, snapshot: JobSnapshot) -> None:
        """A job's state from the watch: kept (and sent) only when newer than what the feed holds."""
        if snapshot.uid in self._deleted_uids or not supersedes(snapshot, self._jobs.get(snapshot.name)):
            return
        self._keep(snapshot)

    def created(self, snapshot: JobSnapshot) -> None:
        """A job's first state, straight after a submit through the API: shown at once unless
        the watch has already reported that very job (its state is then newer than this one)."""
        if self._stop is None:
            return  # nobody is watching: the next subscriber starts from a fresh list
        current = self._jobs.get(snapshot.name)
        if snapshot.uid in self._deleted_uids or (current is not None and current.uid == snapshot.uid):
            return
        self._keep(snapshot)

    def forget(self, name: str) -> None:
        """A job is gone (deleted through the API, or missing from a resync): no late update revives it."""
        snapshot = self._jobs.pop(name, None)
        self._known_since.pop(name, None)
        self._json.pop(name, None)
        if snapshot is None:
            return
        self._deleted_uids[snapshot.uid] = None
        while len(self._deleted_uids) > MAX_TOMBSTONES:
            del self._deleted_uids[next(iter(self._deleted_uids))]
        if self._ready:
            self._broadcast(("deleted", {"name": name}))

    def close(self) -> None:
        for sub in list(self._subscribers):
            self.unsubscribe(sub)

    def _keep(self, snapshot: JobSnapshot) -> None:
        name = snapshot.name
        if name not in self._jobs:
            self._known_since[name] = time.monotonic()
        self._jobs[name] = snapshot
        job = job_json(snapshot)
        if self._json.get(name) == job:
            return
        self._json[name] = job
        if self._ready:
            self._broadcast(("job", job))

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        threading.Thread(
            target=self._watch_forever, args=(self._stop,), name="kubeflow-jupyter-feed", daemon=True
        ).start()

    def _all_jobs_event(self) -> Event:
        return ("jobs", {"jobs": [job_summary(j) for j in self._json.values()]})

    def _broadcast(self, event: Event) -> None:
        for sub in self._subscribers:
            sub.queue.put_nowait(event)

    def _resync(self, snapshots: list[JobSnapshot], listed_at: float) -> None:
        """Apply a fresh list taken at ``listed_at`` (monotonic, when the listing began).

        A job the cache held before the listing began and the list lacks was deleted
        meanwhile; one that entered the cache later (a submit) may simply be newer than
        the list. Jobs in the list go through the same ordering as watch updates."""
        present = {s.name for s in snapshots}
        for name in [n for n in self._jobs if n not in present and self._known_since[n] < listed_at]:
            self.forget(name)
        for snapshot in snapshots:
            self.update(snapshot)
        if not self._ready:
            self._ready = True
            self._broadcast(self._all_jobs_event())

    def _error(self, message: str) -> None:
        self._broadcast(("error", {"message": message}))

    # -- the watch thread ----------------------------------------------------
    def _to_loop(self, stop: threading.Event, fn: Callable, *args: Any) -> None:
        def apply() -> None:
            if stop is self._stop:  # drop what a stopped generation still sends
                fn(*args)

        try:
            self._loop.call_soon_threadsafe(apply)
        except RuntimeError:  # the loop is closed: the server is shutting down
            stop.set()

    def _watch_forever(self, stop: threading.Event) -> None:
        retry = 1.0
        while not stop.is_set():
            try:
                client = self._client_provider()
                listed_at = time.monotonic()
                self._to_loop(stop, self._resync, client.list(), listed_at)
                for snapshot in client.watch(stop=stop, timeout=self.resync_seconds):
                    self._to_loop(stop, self.update, snapshot)
                retry = 1.0
            except Exception as e:  # keep the feed alive and retry with backoff
                if isinstance(e, KubeflowJupyterError):
                    message = str(e)
                else:
                    log.exception("kubeflow-jupyter: watching TFJobs failed")
                    message = f"watching TFJobs failed: {e}"
                self._to_loop(stop, self._error, message)
                stop.wait(retry)
                retry = min(retry * 2, MAX_RETRY_SECONDS)
