"""JobMonitor: a live ipywidgets view of one TFJob, driven by the client's watch stream.

Layout: header (name, backend, namespace, state, elapsed) · progress bar (finished
replicas / total) · per-replica table · the job's current conditions (superseded ones
folded below them) · a chart per training metric, shown once the first record arrives
(:mod:`.metrics_chart`) · a log pane with a replica selector that tails live, TensorFlow's
start-up lines folded (:mod:`kubeflow_jupyter.logfold`) · a Delete button that asks for
confirmation and is disabled once the job is gone, deleted here or elsewhere.

Threads (all daemon): one follows ``client.watch(name)`` and applies each pushed
snapshot; one follows the selected replica's log; one coalesces log lines into pane
updates; the chart panel's follower reads the metrics and its redraw thread coalesces them. Following ipywidgets' guidance for threads they only *assign* trait values,
batched with ``hold_sync()``, and never use ``with output:`` (which routes by the
current cell's message id, and a thread has none of its own). The threads print
nothing: everything they show travels as widget state, which the frontend routes by
comm id whatever cell is executing. Under ipykernel 7 a new thread has an empty
context, so its messages are attributed to the cell executing *now*; nbclient records
widget state from exactly those messages, so a saved notebook keeps the monitor's
latest state.
"""

from __future__ import annotations

import contextlib
import html
import threading
from collections import deque
from collections.abc import Callable, Iterable

import ipywidgets as widgets

from .. import job_display
from ..client import TFJobClient
from ..errors import NOTEBOOK, JobNotFound, KubeflowJupyterError
from ..logfold import folded_html
from ..tfjob.status import FAILED, FINISHED_STATES, SUCCEEDED, JobSnapshot, supersedes
from .metrics_chart import MetricsPanel

LOG_LINES_KEPT = 500  # the pane shows the tail; `%tfjob logs` has the whole log
LOG_TAIL_ON_SELECT = 200  # lines of history shown when a replica is (re)selected
LOG_REDRAW_SECONDS = 0.2  # coalesce bursts of log lines into at most ~5 pane updates/s
ELAPSED_TICK_SECONDS = 1.0  # the header's clock; everything else is redrawn only when pushed
THREAD_JOIN_SECONDS = 2.0
# A finished job's watch ends; whether it is deleted elsewhere (`kubeflow-jupyter delete`, the
# sidebar) is then asked this often, so that Delete does not stay offered for a job that is gone.
GONE_CHECK_SECONDS = 5.0
DELETED = "Deleted"


def start_daemon(target: Callable[[], None], name: str) -> threading.Thread:
    """Daemon threads never keep a kernel or interpreter from exiting."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


class LogPane:
    """A scrolling ``<pre>`` holding the tail of one replica's log.

    Lines arrive on a follower thread; a redraw thread wakes on new lines and assigns
    the pane's value at most every ``LOG_REDRAW_SECONDS``, so a chatty replica costs a
    few comm messages per second, not one per line. The redraw thread lives while a
    follower does: ``start()`` (re)starts it, ``close()`` draws what is left and ends it.
    """

    def __init__(self):
        self.widget = widgets.HTML(layout=widgets.Layout(width="100%"))
        self._lines: deque[str] = deque(maxlen=LOG_LINES_KEPT)
        self._title = ""
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._closed = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, title: str) -> None:
        """Clear the pane for a new follower (of replica ``title``) and make sure it redraws."""
        with self._lock:
            self._lines.clear()
            self._title = title
            if self.thread is None or self._closed.is_set() or not self.thread.is_alive():
                if self.thread is not None:
                    self.thread.join(THREAD_JOIN_SECONDS)
                self._closed.clear()
                self.thread = start_daemon(self._redraw_loop, "kfj-log-redraw")
        self._dirty.set()

    def extend(self, lines: Iterable[str]) -> None:
        with self._lock:
            self._lines.extend(lines)
        self._dirty.set()

    def text(self) -> str:
        with self._lock:
            return "\n".join(self._lines)

    def close(self, title: str | None = None) -> None:
        """Draw what is left (under a new ``title`` if given) and end the redraw thread."""
        with self._lock:
            self._closed.set()
            self._title = self._title if title is None else title
        self._dirty.set()

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _redraw_loop(self) -> None:
        while True:
            self._dirty.wait()
            self._dirty.clear()
            self.widget.value = self._render()
            if self._closed.is_set():
                return
            self._closed.wait(LOG_REDRAW_SECONDS)

    def _render(self) -> str:
        with self._lock:
            body = folded_html(self._lines) or "<i>(no output yet)</i>"
            title = html.escape(self._title)
        # column-reverse keeps the scroll position at the bottom as lines arrive
        return (
            f'<div class="kfj-log-title" style="font-size:0.9em;opacity:0.7">{title}</div>'
            '<div class="kfj-log" style="max-height:240px;overflow:auto;display:flex;flex-direction:column-reverse;'
            'border:1px solid var(--jp-border-color2,#e0e0e0);background:var(--jp-layout-color1,#fafafa)">'
            f'<pre style="flex:none;margin:0;padding:4px 6px;font-size:12px;line-height:1.3;overflow:visible">{body}</pre></div>'
        )


class JobMonitor(widgets.VBox):
    """Live view of one TFJob. ``stop()`` ends its threads; ``close()`` also removes the widget.

    ``metrics_replica``: whose metrics the charts show: None for the result replica (the
    chief/master, else worker-0, as ``%tfjob metrics``), ``"all"``, or a replica id."""

    def __init__(self, client: TFJobClient, name: str, *, metrics_replica: str | None = None):
        self.client = client
        self.name = name
        self.snapshot: JobSnapshot | None = None
        self.state = "Pending"
        self.seen_conditions: list[tuple[str, str, str, str]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # The current log follower's stop event: set on a replica switch and by stop(), so the
        # follower ends at once even while its replica prints nothing.
        self._log_stop = threading.Event()
        self._status_thread: threading.Thread | None = None
        self._tick_thread: threading.Thread | None = None
        self._log_thread: threading.Thread | None = None
        self._gone_thread: threading.Thread | None = None
        self._syncing_selector = False
        self.following: str | None = None  # the replica whose log the pane tails

        self.header = widgets.HTML()
        self.progress = widgets.IntProgress(
            value=0, min=0, max=1, description="finished", layout=widgets.Layout(width="60%")
        )
        self.progress_label = widgets.Label("0/0 replicas")
        self.replica_table = widgets.HTML()
        self.conditions = widgets.HTML()
        self.message = widgets.HTML()  # errors from the threads and the Delete button
        self.replica_selector = widgets.Dropdown(description="log of", options=[], layout=widgets.Layout(width="auto"))
        self.delete_button = widgets.Button(description="Delete job", button_style="danger", icon="trash")
        self.confirm_label = widgets.HTML()
        self.confirm_button = widgets.Button(description="Yes, delete", button_style="danger")
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirm_box = widgets.HBox(
            [self.confirm_label, self.confirm_button, self.cancel_button], layout=widgets.Layout(display="none")
        )
        self.log_pane = LogPane()
        self.metrics = MetricsPanel(client, name, metrics_replica)

        self.delete_button.on_click(self._ask_delete)
        self.confirm_button.on_click(self._confirm_delete)
        self.cancel_button.on_click(self._cancel_delete)
        self.replica_selector.observe(self._on_replica_selected, names="value")

        super().__init__(
            [
                self.header,
                widgets.HBox([self.progress, self.progress_label]),
                self.replica_table,
                self.conditions,
                self.metrics.widget,
                widgets.HBox([self.replica_selector, self.delete_button]),
                self.confirm_box,
                self.message,
                self.log_pane.widget,
            ],
            layout=widgets.Layout(border="1px solid var(--jp-border-color2, #e0e0e0)", padding="6px"),
        )
        self.add_class("kfj-job-monitor")
        self._render_header()
        self._start()

    # -- lifecycle ---------------------------------------------------------------
    def _start(self) -> None:
        self._status_thread = start_daemon(self._follow_status, f"kfj-watch-{self.name}")
        self._tick_thread = start_daemon(self._tick, f"kfj-tick-{self.name}")
        self.metrics.start()

    @property
    def running(self) -> bool:
        """True while any thread that follows the job is alive (status, clock, log, metrics); a
        finished job's deletion check (until ``stop()``) is not one of them."""
        threads = [self._status_thread, self._tick_thread, self._log_thread]
        alive = any(t is not None and t.is_alive() for t in threads)
        return alive or self.log_pane.running or self.metrics.running

    def join(self, timeout: float | None = None) -> None:
        """Wait for the threads to end: the job finished (and the followed replica with
        it), was deleted, or ``stop()`` was called. ``timeout`` applies to each thread."""
        for thread in (self._status_thread, self._tick_thread, self._log_thread):
            if thread is not None:
                thread.join(timeout)
        self.log_pane.join(timeout)
        self.metrics.join(timeout)

    def stop(self) -> None:
        """End the threads, the log follower included (even while its replica is silent)."""
        self._stop.set()
        with self._lock:
            self._log_stop.set()
            self.log_pane.close()
        threads = (self._status_thread, self._tick_thread, self._log_thread, self.log_pane.thread, self._gone_thread)
        self.metrics.stop()
        for thread in threads:
            if thread is not None and thread is not threading.current_thread():
                thread.join(THREAD_JOIN_SECONDS)

    def close(self) -> None:
        """Stop following and remove the widget (ipywidgets also calls this on garbage collection)."""
        if hasattr(self, "_stop"):  # not when __init__ failed half-way
            self.stop()
        super().close()

    # -- status: pushed snapshots ---------------------------------------------------------
    def _follow_status(self) -> None:
        try:
            for snap in self.client.watch(self.name, stop=self._stop):
                self.apply(snap)
        except JobNotFound:
            self._show_deleted()
            return
        except KubeflowJupyterError as e:
            self._show_message(e.message_for(NOTEBOOK))
            return
        except Exception as e:  # a thread has nobody to raise to: say it in the widget
            self._show_message(f"monitor stopped: {type(e).__name__}: {e}")
            return
        if self.state in FINISHED_STATES and not self._stop.is_set():
            self._gone_thread = start_daemon(self._check_gone, f"kfj-gone-{self.name}")

    def _check_gone(self) -> None:
        """The watch of a finished job has ended: notice when the job is deleted elsewhere."""
        while not self._stop.wait(GONE_CHECK_SECONDS) and self.state != DELETED:
            try:
                self.client.get(self.name)
            except JobNotFound:
                self._show_deleted()
                return
            except Exception:  # a backend hiccup: ask again next time
                continue

    def _tick(self) -> None:
        """Advance the header's elapsed time each second while the job runs."""
        while not self._stop.wait(ELAPSED_TICK_SECONDS):
            if self.state in FINISHED_STATES or self.state == DELETED or not self._status_thread.is_alive():
                return
            if self.snapshot is not None and self.snapshot.start_time:
                self._render_header()

    def apply(self, snap: JobSnapshot) -> None:
        """Show one snapshot (called from the status thread, once per pushed change).

        Only a newer state than the one shown is applied, and a deleted job stays deleted."""
        if self.state == DELETED or not supersedes(snap, self.snapshot):
            return
        self.snapshot, self.state = snap, snap.state
        for c in snap.conditions:
            entry = _condition_entry(c)
            if entry not in self.seen_conditions:
                self.seen_conditions.append(entry)
        done, total = job_display.finished_replicas(snap), len(snap.replicas)
        with self._hold(self.progress, self.progress_label, self.header, self.replica_table, self.conditions):
            self.progress.max = max(total, 1)
            self.progress.value = done
            self.progress.bar_style = {SUCCEEDED: "success", FAILED: "danger"}.get(snap.state, "info")
            self.progress_label.value = f"{done}/{total} replicas"
            self._render_header()
            self.replica_table.value = job_display.replicas_html(snap)
            self.conditions.value = self._conditions_html()
        ids = [r.id for r in snap.replicas]
        if list(self.replica_selector.options) != ids:
            keep = self.replica_selector.value
            self._syncing_selector = True  # programmatic change: not a user's selection
            try:
                with self._hold(self.replica_selector):
                    self.replica_selector.options = ids
                    self.replica_selector.value = keep if keep in ids else snap.default_replica
            finally:
                self._syncing_selector = False
        if self.replica_selector.value and self.replica_selector.value != self.following:
            self._follow_log(self.replica_selector.value)

    def _render_header(self) -> None:
        snap = self.snapshot
        elapsed = job_display.elapsed(snap) if snap else "-"
        self.header.value = (
            f'<div class="kfj-header" style="display:flex;gap:12px;align-items:center;flex-wrap:wrap">'
            f'<b style="font-size:1.1em">TFJob {html.escape(self.name)}</b>'
            f"{job_display.badge_html(self.state)}"
            f"<span>backend <code>{html.escape(self.client.backend_name)}</code></span>"
            f"<span>namespace <code>{html.escape(self.client.namespace)}</code></span>"
            f"<span>elapsed {elapsed}</span></div>"
        )

    def _conditions_html(self) -> str:
        """The operator's current conditions (status True in the latest state); the superseded ones
        (a Running that turned False, a Restarting that passed) folded below, in the order seen."""
        current = (
            {_condition_entry(c) for c in self.snapshot.conditions if c.status == "True"} if self.snapshot else set()
        )
        shown = [entry for entry in self.seen_conditions if entry in current]
        superseded = [entry for entry in self.seen_conditions if entry not in current]
        style = "margin:2px 0;padding-left:18px;font-size:0.9em"
        out = f'<ul class="kfj-conditions" style="{style}">{"".join(map(_condition_item, shown))}</ul>'
        if superseded:
            out += (
                f'<details class="kfj-conditions-superseded" style="font-size:0.9em">'
                f'<summary style="opacity:0.7;cursor:pointer">{len(superseded)} superseded</summary>'
                f'<ul style="{style};opacity:0.7">{"".join(map(_condition_item, superseded))}</ul></details>'
            )
        return out

    def _show_deleted(self) -> None:
        self.state = DELETED
        with self._hold(self.header, self.delete_button):
            self._render_header()
            self.delete_button.disabled = True
        self.log_pane.close()
        self.metrics.stop()

    def _show_message(self, text: str) -> None:
        self.message.value = job_display.error_html(text) if text else ""

    @staticmethod
    def _hold(*children: widgets.Widget) -> contextlib.ExitStack:
        """Batch the trait changes of several widgets into one message each."""
        stack = contextlib.ExitStack()
        for child in children:
            stack.enter_context(child.hold_sync())
        return stack

    # -- logs -------------------------------------------------------------------
    def _on_replica_selected(self, change: dict) -> None:
        if not self._syncing_selector and change["new"] and change["new"] != self.following:
            self._follow_log(change["new"])

    def _follow_log(self, replica: str) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self._log_stop.set()  # the previous follower ends now
            self._log_stop = stop = threading.Event()
            self.following = replica
            self.log_pane.start(f"{replica}: the last {LOG_TAIL_ON_SELECT} lines, following live")
        self._log_thread = start_daemon(lambda: self._tail(replica, stop), f"kfj-logs-{self.name}-{replica}")

    def _tail(self, replica: str, stop: threading.Event) -> None:
        """Follow one replica's log until it ends or ``stop`` is set (another replica was
        selected, or the monitor stopped); then let the pane draw the rest and rest."""
        try:
            lines = self.client.logs(self.name, replica, follow=True, tail=LOG_TAIL_ON_SELECT, stop=stop)
            try:
                for line in lines:
                    if stop.is_set():
                        return  # a stale follower drops its lines
                    self.log_pane.extend([line])
            finally:
                if hasattr(lines, "close"):
                    lines.close()
        except KubeflowJupyterError as e:
            if not stop.is_set():
                self.log_pane.extend([f"[{e.message_for(NOTEBOOK)}]"])
        except Exception as e:  # a thread has nobody to raise to: say it in the pane
            self.log_pane.extend([f"[log follower stopped: {type(e).__name__}: {e}]"])
        finally:
            with self._lock:
                if not stop.is_set():
                    self.log_pane.close(f"{replica}: the last {LOG_TAIL_ON_SELECT} lines (the replica has ended)")

    # -- delete -----------------------------------------------------------------
    def _ask_delete(self, _button=None) -> None:
        if self.state == DELETED:
            return
        self.confirm_label.value = f"Delete TFJob <b>{html.escape(self.name)}</b> and stop all its replicas?&nbsp;"
        self.confirm_box.layout.display = "flex"

    def _cancel_delete(self, _button=None) -> None:
        self.confirm_box.layout.display = "none"

    def _confirm_delete(self, _button=None) -> None:
        self.confirm_box.layout.display = "none"
        try:
            self.client.delete(self.name)
        except JobNotFound:  # deleted elsewhere since the last check
            self._show_message(f"TFJob {self.name!r} was already deleted")
        except KubeflowJupyterError as e:
            self._show_message(e.message_for(NOTEBOOK))
            return
        self._show_deleted()


def _condition_entry(c) -> tuple[str, str, str, str]:
    return (c.lastTransitionTime, c.type, c.status, f"{c.reason}: {c.message}" if c.message else c.reason)


def _condition_item(entry: tuple[str, str, str, str]) -> str:
    when, type_, status, text = entry
    return (
        f"<li><code>{html.escape(when or '-')}</code> <b>{html.escape(type_)}</b>"
        f"{'' if status == 'True' else ' (' + html.escape(status) + ')'} {html.escape(text)}</li>"
    )
