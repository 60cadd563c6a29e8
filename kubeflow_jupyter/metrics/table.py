"""MetricsTable: every series of one job (metric × replica) from both sources, merged on step.

Thread-safe: followers write from their threads while a notebook, a widget or a REST
handler reads. Each write gets a sequence number, so a reader asks for what changed since
the last number it saw (the REST endpoint's cursor) instead of copying everything.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .grammar import Record
from .series import MAX_POINTS, Series, goal

if TYPE_CHECKING:
    import pandas

LOG, EVENTS = "log", "events"


@dataclass(frozen=True)
class Point:
    """One new value: what a follower yields and a live chart draws."""

    replica: str
    metric: str
    step: int
    value: float
    source: str = LOG  # "log" (a record in the replica's log) or "events" (an event-file scalar)


class MetricsTable:
    def __init__(self, limit: int = MAX_POINTS):
        self.limit = limit
        self._series: dict[tuple[str, str], Series] = {}  # (metric, replica), in order of first value
        self._seq = 0
        self._lock = threading.Lock()

    @property
    def cursor(self) -> int:
        """The sequence number of the newest write (0: nothing yet)."""
        return self._seq

    def add(self, point: Point) -> None:
        self.add_many([point])

    def add_many(self, points: Iterable[Point]) -> int:
        """Write points; returns how many."""
        count = 0
        with self._lock:
            for p in points:
                series = self._series.get((p.metric, p.replica))
                if series is None:
                    series = self._series[(p.metric, p.replica)] = Series(self.limit)
                self._seq += 1
                series.add(p.step, p.value, self._seq)
                count += 1
        return count

    def add_record(self, replica: str, record: Record) -> int:
        return self.add_many(Point(replica, name, record.step, value) for name, value in record.values.items())

    @property
    def metrics(self) -> list[str]:
        with self._lock:
            return list(dict.fromkeys(metric for metric, _ in self._series))

    @property
    def replicas(self) -> list[str]:
        with self._lock:
            return list(dict.fromkeys(replica for _, replica in self._series))

    def series(self, metric: str, replica: str) -> Series | None:
        return self._series.get((metric, replica))

    def since(self, cursor: int = 0) -> tuple[dict[str, dict[str, list[list[float]]]], int]:
        """``({metric: {replica: [[step, value], ...]}}, new cursor)``: the points written after
        ``cursor`` (every point held for 0); a series with nothing new is left out."""
        out: dict[str, dict[str, list[list[float]]]] = {}
        with self._lock:
            for (metric, replica), series in self._series.items():
                points = series.points(cursor if cursor > 0 else -1)
                if points:
                    out.setdefault(metric, {})[replica] = points
            return out, self._seq

    def summary(self) -> dict[str, dict[str, dict]]:
        """``{metric: {replica: {"last": [step, value], "best": [step, value], "goal": "min"|"max"}}}``."""
        out: dict[str, dict[str, dict]] = {}
        with self._lock:
            for (metric, replica), series in self._series.items():
                direction = goal(metric)
                out.setdefault(metric, {})[replica] = {
                    "last": list(series.last() or ()),
                    "best": list(series.best(direction) or ()),
                    "goal": direction,
                }
        return out

    def to_frame(self, replicas: Iterable[str] | None = None) -> pandas.DataFrame:
        """Wide form: columns ``replica``, ``step``, then one per metric (in the order first seen),
        one row per (replica, step) that has any value, NaN where a metric has none; sorted by
        replica (in ``replicas``' order, else first seen) then step."""
        import pandas  # heavy: only frames need it

        with self._lock:
            chosen = list(dict.fromkeys(replicas)) if replicas is not None else None
            order = chosen or list(dict.fromkeys(r for _, r in self._series))
            metrics = list(dict.fromkeys(m for m, r in self._series if r in order))
            rows: dict[tuple[int, int], dict[str, float]] = {}
            for (metric, replica), series in self._series.items():
                if replica not in order:
                    continue
                rank = order.index(replica)
                for step, value in zip(series.steps, series.values, strict=True):
                    rows.setdefault((rank, step), {})[metric] = value
        keys = sorted(rows)
        columns: dict[str, list] = {
            "replica": [order[rank] for rank, _ in keys],
            "step": [step for _, step in keys],
        }
        for metric in metrics:
            columns[metric] = [rows[key].get(metric, float("nan")) for key in keys]
        frame = pandas.DataFrame(columns)
        frame["step"] = frame["step"].astype("int64")
        for metric in metrics:
            frame[metric] = frame[metric].astype("float64")
        return frame
