"""The server side of live charts: one follower per (job, replica selection), shared by every
sidebar that polls it, answering "what is new since cursor C" cheaply.

A cursor is ``"<generation>-<sequence>"``: the sequence numbers of a follower's table, plus a
generation that changes when the follower is replaced (evicted, job deleted and re-created,
server restarted). A cursor of another generation gets every point again with ``reset: true``.
A request may wait (long poll) for the next point: waiting holds no thread, only an
``asyncio.Event`` the follower's threads set through the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from .follow import MetricsFollower
from .series import goal
from .table import Point

if TYPE_CHECKING:
    from ..jobsource import JobSource

#: Followers kept at once; the least recently asked for is stopped past this.
MAX_FOLLOWERS = 16
#: A follower nobody has asked for in this long is stopped (its job's data is read again if asked).
IDLE_SECONDS = 600.0
#: Longest long poll a request may ask for.
MAX_WAIT_SECONDS = 30.0

_generations = itertools.count(int(time.time()) % 100000 * 1000)


def default_logdir(client: JobSource, name: str) -> str | None:
    """The job's event-file directory when its backend says (``backend.logdir(name)``) and it is a
    path here, else None (a cluster's ``pvc://`` logdir is read by its Tensorboard, not here)."""
    logdir = getattr(client.backend, "logdir", None)
    if logdir is None:
        return None
    try:
        path = logdir(name)
    except Exception:
        return None
    return str(path) if path and not str(path).startswith("pvc://") else None


class LiveMetrics:
    """One follower and the long polls waiting on it."""

    def __init__(self, follower: MetricsFollower):
        self.follower = follower
        self.generation = str(next(_generations))
        self.last_asked = time.monotonic()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()

    def changed(self, _points: list[Point] | None = None) -> None:
        """From the follower's threads: wake every waiting request."""
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(event.set)

    def cursor(self) -> str:
        return f"{self.generation}-{self.follower.table.cursor}"

    def parse_cursor(self, since: str | None) -> int:
        """The sequence number a cursor of this generation names; 0 (everything) for another one."""
        generation, _, seq = (since or "").partition("-")
        return int(seq) if generation == self.generation and seq.isdigit() else 0

    async def wait(self, after: int, seconds: float) -> None:
        """Return when the table has moved past ``after``, the follow ended, or after ``seconds``."""
        if seconds <= 0 or self.follower.table.cursor > after or not self.follower.running:
            return
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.add(waiter)
        try:
            deadline = time.monotonic() + seconds
            while self.follower.table.cursor <= after and self.follower.running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                event.clear()
                # Wake at least each second: the follow's end sets no event.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(remaining, 1.0))
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def answer(self, since: str | None) -> dict:
        """The JSON reply: points after ``since``, the new cursor, and whether the follow goes on."""
        self.last_asked = time.monotonic()
        after = self.parse_cursor(since)
        series, seq = self.follower.table.since(after)
        return {
            "replicas": self.follower.replicas,
            "series": series,
            "goals": {metric: goal(metric) for metric in series},
            "cursor": f"{self.generation}-{seq}",
            "reset": after == 0,
            "live": self.follower.running,
            "errors": dict(self.follower.errors),
        }


class MetricsRegistry:
    """The followers of one server: created on first ask, shared, evicted when idle or too many."""

    def __init__(
        self,
        client: Callable[[], JobSource],
        *,
        logdir_of: Callable[[JobSource, str], str | None] = default_logdir,
        max_followers: int = MAX_FOLLOWERS,
        idle_seconds: float = IDLE_SECONDS,
    ):
        self._client = client
        self._logdir_of = logdir_of
        self.max_followers = max_followers
        self.idle_seconds = idle_seconds
        self._live: OrderedDict[tuple[str, str | None], LiveMetrics] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, replica: str | None = None) -> LiveMetrics:
        """The job's live metrics (blocking: resolves the job; call from a worker thread).
        Raises JobNotFound / ReplicaNotFound."""
        key = (name, replica or None)
        client = self._client()
        with self._lock:
            live = self._live.get(key)
        # An ended follow is kept (its log is not read again), unless the job was re-created since.
        if live is not None and (live.follower.running or client.get(name).uid == live.follower.uid):
            with self._lock:
                if key in self._live:
                    self._live.move_to_end(key)
            live.last_asked = time.monotonic()
            return live
        follower = MetricsFollower(client, name, replica or None, logdir=self._logdir_of(client, name))
        live = LiveMetrics(follower)
        follower.on_change = live.changed
        follower.start()
        with self._lock:
            old = self._live.pop(key, None)
            self._live[key] = live
            evicted = self._evict()
        for stale in ([old] if old else []) + evicted:
            stale.follower.stop()
        return live

    def _evict(self) -> list[LiveMetrics]:
        now = time.monotonic()
        gone = [k for k, v in self._live.items() if now - v.last_asked > self.idle_seconds]
        while len(self._live) - len(gone) > self.max_followers:
            gone.append(next(k for k in self._live if k not in gone))
        return [self._live.pop(k) for k in gone]

    def forget(self, name: str) -> None:
        """The job was deleted: stop its followers and drop what they held."""
        with self._lock:
            keys = [k for k in self._live if k[0] == name]
            stale = [self._live.pop(k) for k in keys]
        for live in stale:
            live.follower.stop()

    def close(self) -> None:
        with self._lock:
            stale = list(self._live.values())
            self._live.clear()
        for live in stale:
            live.follower.stop()
