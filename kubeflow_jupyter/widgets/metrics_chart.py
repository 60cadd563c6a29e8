"""The JobMonitor's chart panel: one small line chart per metric, live as records arrive.

:class:`MetricsChart` is an ``anywidget`` whose front end is uPlot (the chart library of the
lab extension's sidebar), vendored in ``static/`` with its MIT license: the module travels
with the widget's state as one string, so it draws with no network (hubs often have none)
and in a notebook saved by nbclient. The kernel sends the data, last and best values; the
browser only draws, in colours read from JupyterLab's theme variables.

:class:`MetricsPanel` feeds it: a :class:`~kubeflow_jupyter.metrics.MetricsFollower` writes
points into its table from the follower's threads, whose ``on_change`` only sets an event; a
redraw thread then assigns the chart's traits, batched with ``hold_sync()``, at most every
:data:`REDRAW_SECONDS` (a replica logging each millisecond costs a few messages a second).
The panel stays hidden until the first point arrives.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import anywidget
import ipywidgets as widgets
import traitlets

from ..metrics.follow import MetricsFollower
from ..metrics.live import default_logdir
from ..metrics.series import bucket_extremes

if TYPE_CHECKING:
    from ..client import TFJobClient

#: Points drawn per series at most; the table holds up to 10,000 (see docs/metrics.md).
MAX_SHOWN_POINTS = 2_000
#: The chart is redrawn at most this often while points arrive.
REDRAW_SECONDS = 0.3
#: How often the redraw thread looks whether the follow has ended, when no point comes.
IDLE_CHECK_SECONDS = 0.5
THREAD_JOIN_SECONDS = 2.0

_STATIC = Path(__file__).with_name("static")


@cache
def _module() -> tuple[str, str]:
    """The widget's ES module (uPlot's IIFE build, which defines ``uPlot``, then the chart code)
    and its CSS."""
    esm = (_STATIC / "uPlot.iife.min.js").read_text(encoding="utf-8") + "\n"
    esm += (_STATIC / "metrics_chart.js").read_text(encoding="utf-8")
    css = (_STATIC / "uPlot.min.css").read_text(encoding="utf-8") + "\n"
    css += (_STATIC / "metrics_chart.css").read_text(encoding="utf-8")
    return esm, css


def thin(points: list[list[float]], limit: int = MAX_SHOWN_POINTS) -> list[list[float]]:
    """At most ``limit`` of ``[[step, value], ...]`` (in step order) for drawing: past that, each
    of ``limit // 4`` buckets of consecutive steps keeps its first, last, lowest and highest
    point, so the curve's ends, spikes and best value are still drawn."""
    n = len(points)
    if n <= limit:
        return points
    return [points[i] for i in bucket_extremes(n, max(limit // 4, 1), lambda i: points[i][1])]


class MetricsChart(anywidget.AnyWidget):
    """One small line chart per metric (x = step, one line per replica), its last and best value
    above it. Set from the kernel; ``series``/``summary`` as :meth:`MetricsTable.since` and
    :meth:`MetricsTable.summary` give them."""

    _esm = traitlets.Unicode().tag(sync=True)
    _css = traitlets.Unicode().tag(sync=True)
    #: ``{metric: {replica: [[step, value], ...]}}``, metrics in the order first seen
    series = traitlets.Dict().tag(sync=True)
    #: ``{metric: {replica: {"last": [step, value], "best": [step, value], "goal": "min"|"max"}}}``
    summary = traitlets.Dict().tag(sync=True)
    #: whether the follow goes on (the header says "live" or "ended")
    live = traitlets.Bool(False).tag(sync=True)

    def __init__(self, **kwargs):
        esm, css = _module()
        super().__init__(_esm=esm, _css=css, **kwargs)


class MetricsPanel:
    """Follows one job's metrics into a :class:`MetricsChart` (``.widget``), hidden until a point comes.

    ``start()`` starts the redraw thread, which starts the follower (resolving the job there, not
    in the caller's cell); ``stop()`` ends both; without ``stop()`` they end after the final read
    once the job's logs have ended."""

    def __init__(self, client: TFJobClient, name: str, replica: str | None = None):
        self.client = client
        self.name = name
        self.replica = replica
        self.widget = MetricsChart(layout=widgets.Layout(display="none", width="100%"))
        self.follower: MetricsFollower | None = None
        self.error = ""
        self.thread: threading.Thread | None = None
        self._dirty = threading.Event()
        self._stop = threading.Event()

    def start(self) -> MetricsPanel:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name=f"kfj-metrics-{self.name}", daemon=True)
            self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        follower = self.follower
        if follower is not None:
            follower.stop()
            follower.join(THREAD_JOIN_SECONDS)
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(THREAD_JOIN_SECONDS)

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)
        if self.follower is not None:
            self.follower.join(timeout)

    @property
    def running(self) -> bool:
        alive = self.thread is not None and self.thread.is_alive()
        return alive or (self.follower is not None and self.follower.running)

    @property
    def shown(self) -> bool:
        return self.widget.layout.display != "none"

    def _changed(self, _points) -> None:
        """From the follower's threads: only wake the redraw thread."""
        self._dirty.set()

    def _run(self) -> None:
        try:
            follower = MetricsFollower(
                self.client,
                self.name,
                self.replica,
                logdir=default_logdir(self.client, self.name),
                on_change=self._changed,
            )
            if self._stop.is_set():
                return
            follower.start()
            self.follower = follower  # once started: join()/running from other threads see started threads
        except Exception as e:  # the job is gone already, a backend error: no charts, the monitor says the rest
            self.error = f"{type(e).__name__}: {e}"
            return
        if self._stop.is_set():  # stop() came while the follower started
            follower.stop()
            follower.join(THREAD_JOIN_SECONDS)
            return
        while True:
            if self._dirty.wait(IDLE_CHECK_SECONDS):
                self._dirty.clear()
                self.redraw()
                if self._stop.wait(REDRAW_SECONDS):
                    return
            elif self._stop.is_set():
                return
            elif not follower.running:
                self.redraw()  # the follow has ended (after its final read): say so, draw what came last
                return

    def redraw(self) -> None:
        """Assign the table's current data to the chart (one comm message per widget)."""
        follower = self.follower
        if follower is None:
            return
        series, _ = follower.table.since(0)
        shown = {metric: {rid: thin(pts) for rid, pts in reps.items()} for metric, reps in series.items()}
        live = follower.running and not self._stop.is_set()
        with self.widget.hold_sync():
            self.widget.series = shown
            self.widget.summary = follower.table.summary()
            self.widget.live = live
        if shown and not self.shown:
            self.widget.layout.display = "block"
