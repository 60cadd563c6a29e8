"""Read a job's metrics through the client: once (:func:`collect`) or live (:class:`MetricsFollower`).

Only ``client.get(name)`` and ``client.logs(name, replica, follow=..., stop=...)`` are used, so
both backends work alike; event files are read from ``logdir`` (a local path) when given.
Each log is read once, front to back: :func:`collect` reads it to its current end, a follower
keeps reading as it grows (the backend's follow), and neither ever goes back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..errors import ReplicaNotFound, ReplicaNotStarted
from .events import EventScalars, split_run
from .grammar import LogParser
from .table import EVENTS, LOG, MetricsTable, Point

if TYPE_CHECKING:
    import pandas

    from ..jobsource import JobSource
    from ..tfjob.status import JobSnapshot

log = logging.getLogger(__name__)

ALL = "all"
#: Seconds between looks at the event files (new files, new records) while following.
EVENT_POLL_SECONDS = 0.2
#: Seconds between tries to open the log of a replica that has not started yet (a pending pod).
NOT_STARTED_RETRY_SECONDS = 1.0


def choose_replicas(snapshot: JobSnapshot, replica: str | None) -> list[str]:
    """None: the result replica (chief/master, else worker-0); ``"all"``: every replica; else that one."""
    if replica == ALL:
        return [r.id for r in snapshot.replicas]
    if replica is None:
        default = snapshot.default_replica
        return [default] if default else []
    if snapshot.replica(replica) is None:
        known = ", ".join(r.id for r in snapshot.replicas) or "none"
        raise ReplicaNotFound(f"TFJob {snapshot.name!r} has no replica {replica!r} (it has: {known})")
    return [replica]


def scalar_points(scalars, replicas: list[str], default: str | None) -> Iterator[Point]:
    """Event-file scalars as points: a run named after a replica is that replica's, the rest the result replica's."""
    for scalar in scalars:
        owner, run = split_run(scalar.run, replicas)
        metric = f"{run}/{scalar.tag}" if run else scalar.tag
        replica = owner or default
        if replica is not None:
            yield Point(replica, metric, scalar.step, scalar.value, EVENTS)


def collect(
    client: JobSource,
    name: str,
    replica: str | None = None,
    logdir: str | os.PathLike | None = None,
    *,
    tail: int | None = None,
) -> pandas.DataFrame:
    """The job's metrics now, as a wide DataFrame (see :meth:`MetricsTable.to_frame`).

    ``replica``: None for the result replica, ``"all"``, or a replica id. ``logdir``: the job's
    event-file directory; its scalars are merged on step into the result replica's rows (or
    the rows of the replica a run directory is named after). ``tail``: read only the last
    lines of each log."""
    snapshot = client.get(name)
    replicas = choose_replicas(snapshot, replica)
    table = MetricsTable()
    for rid in replicas:
        parser = LogParser()
        try:
            lines = client.logs(name, rid, tail=tail)
            for line in lines:
                record = parser.feed_line(line)
                if record is not None:
                    table.add_record(rid, record)
        except ReplicaNotStarted:
            continue
    if logdir is not None and os.path.isdir(logdir):
        with EventScalars(logdir) as events:
            every = [r.id for r in snapshot.replicas]
            points = scalar_points(events.poll(), every, snapshot.default_replica)
            table.add_many(p for p in points if p.replica in replicas)
    return table.to_frame(replicas)


class MetricsFollower:
    """Follows a job's metrics as they are written, into :attr:`table`, until the job's logs end
    or :meth:`stop`. Iterate it for each new :class:`Point` as it arrives (a live chart)::

        with MetricsFollower(client, "mnist", logdir=logdir) as follower:
            for point in follower:          # ends when the replicas' logs end
                chart.add(point)

    ``on_change(points)`` is called from the follower's threads after each batch is in the table.
    """

    def __init__(
        self,
        client: JobSource,
        name: str,
        replica: str | None = None,
        logdir: str | os.PathLike | None = None,
        *,
        table: MetricsTable | None = None,
        on_change: Callable[[list[Point]], None] | None = None,
        event_poll_seconds: float = EVENT_POLL_SECONDS,
    ):
        self.client = client
        self.name = name
        self.selection = replica
        self.logdir = logdir
        self.table = table if table is not None else MetricsTable()
        self.stop_event = threading.Event()
        self.replicas: list[str] = []
        self.uid = ""  # the job's uid when the follow started: a job re-created under the name is another
        self.errors: dict[str, str] = {}
        self.on_change = on_change
        self._event_poll_seconds = event_poll_seconds
        self._threads: list[threading.Thread] = []
        self._listeners: list[queue.SimpleQueue] = []
        self._lock = threading.Lock()
        self._logs_done = threading.Event()
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> MetricsFollower:
        """Resolve the job and its replicas (JobNotFound / ReplicaNotFound here), then follow."""
        if self._started:
            return self
        snapshot = self.client.get(self.name)
        self.replicas = choose_replicas(snapshot, self.selection)
        self.uid = snapshot.uid
        self._started = True
        logs = [self._spawn(self._follow_log, rid, name=f"kubeflow-jupyter-metrics-{rid}") for rid in self.replicas]
        self._spawn(self._wait_for_logs, logs, name="kubeflow-jupyter-metrics-end")
        if self.logdir is not None:
            every = [r.id for r in snapshot.replicas]
            self._spawn(self._poll_events, every, snapshot.default_replica, name="kubeflow-jupyter-metrics-events")
        return self

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every thread to end; True if they did."""
        for thread in self._threads:
            thread.join(timeout)
        return not self.running

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def __enter__(self) -> MetricsFollower:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self.join(5)

    def __iter__(self) -> Iterator[Point]:
        return self.points()

    def points(self, timeout: float | None = None) -> Iterator[Point]:
        """Each point written from now on (the table holds the earlier ones), until the follow
        ends; with ``timeout``, also ends after that many seconds with nothing new."""
        self.start()
        inbox: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            self._listeners.append(inbox)
        try:
            while True:
                try:
                    item = inbox.get(timeout=timeout if timeout is not None else 0.5)
                except queue.Empty:
                    if timeout is not None or not self.running:
                        return
                    continue
                if item is None:
                    return
                yield item
        finally:
            with self._lock:
                self._listeners.remove(inbox)

    # -- threads -----------------------------------------------------------------------------
    def _spawn(self, target, *args, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()  # listed once started: join() from another thread must never meet an unstarted one
        self._threads.append(thread)
        return thread

    def _publish(self, points: list[Point]) -> None:
        if not points:
            return
        self.table.add_many(points)
        with self._lock:
            for inbox in self._listeners:
                for point in points:
                    inbox.put(point)
        if self.on_change is not None:
            try:
                self.on_change(points)
            except Exception:  # a listener's bug must not end the follow
                log.exception("metrics on_change callback failed")

    def _follow_log(self, rid: str) -> None:
        parser = LogParser()
        while not self.stop_event.is_set():
            try:
                lines = self.client.logs(self.name, rid, follow=True, stop=self.stop_event)
                try:
                    for line in lines:
                        record = parser.feed_line(line)
                        if record is not None:
                            self._publish([Point(rid, n, record.step, v, LOG) for n, v in record.values.items()])
                finally:
                    with contextlib.suppress(Exception):
                        lines.close()
                return
            except ReplicaNotStarted:  # a pending pod: its log comes later
                if self.stop_event.wait(NOT_STARTED_RETRY_SECONDS):
                    return
            except Exception as e:
                self.errors[rid] = str(e)
                log.warning("metrics of %s/%s: %s", self.name, rid, e)
                return

    def _wait_for_logs(self, threads: list[threading.Thread]) -> None:
        for thread in threads:
            thread.join()
        self._logs_done.set()
        if self.logdir is None:
            self._end()

    def _poll_events(self, replicas: list[str], default: str | None) -> None:
        events = EventScalars(self.logdir)
        try:
            while True:
                # Once the logs have ended, one more look catches what was flushed at exit.
                last = self._logs_done.is_set() or self.stop_event.is_set()
                if os.path.isdir(self.logdir):
                    try:
                        self._publish(list(scalar_points(events.poll(), replicas, default)))
                    except Exception as e:
                        self.errors["events"] = str(e)
                        log.warning("event files of %s: %s", self.name, e)
                        return
                if last:
                    return
                self._logs_done.wait(self._event_poll_seconds)
        finally:
            events.close()
            self._end()

    def _end(self) -> None:
        with self._lock:
            for inbox in self._listeners:
                inbox.put(None)
