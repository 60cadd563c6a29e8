"""Rich display of TFJob snapshots: HTML tables in JupyterLab, plain text in terminal IPython.

Pure rendering over :class:`~kubeflow_jupyter.tfjob.status.JobSnapshot`; nothing heavy
is imported. The magics register :func:`snapshot_html`/:func:`snapshot_text` as IPython
formatters for ``JobSnapshot`` so that a snapshot shown in a cell renders as a table too.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from .tfjob.status import (
    ENDED_PHASES,
    PENDING,
    POD_FAILED,
    POD_RUNNING,
    POD_SUCCEEDED,
    STOPPED,
    JobSnapshot,
    age,
    format_duration,
    parse_iso,
)

# Badge colours: Material palette shades that stay readable on light and dark themes.
STATE_COLOURS = {
    "Created": "#607d8b",
    "Pending": "#607d8b",
    "Running": "#1976d2",
    "Restarting": "#f57c00",
    "Suspended": "#757575",
    "Succeeded": "#2e7d32",
    "Failed": "#c62828",
    "Deleted": "#424242",
    "Unknown": "#6d4c41",  # the job's stored state cannot be read (its message says why)
}
PHASE_COLOURS = {
    PENDING: "#607d8b",
    POD_RUNNING: "#1976d2",
    POD_SUCCEEDED: "#2e7d32",
    POD_FAILED: "#c62828",
    STOPPED: "#757575",
}

SUMMARY_COLUMNS = ("NAME", "STATE", "ACTIVE", "SUCCEEDED", "FAILED", "AGE", "BACKEND")
REPLICA_COLUMNS = ("REPLICA", "TYPE", "INDEX", "PHASE", "RESTARTS", "EXIT CODE", "STARTED")

_TABLE_STYLE = "border-collapse:collapse;font-size:var(--jp-ui-font-size1,13px)"
_CELL_STYLE = "padding:2px 10px;text-align:left;border-bottom:1px solid var(--jp-border-color2,#e0e0e0)"


def clock(timestamp: str | None) -> str:
    """Time of day (UTC) of an RFC 3339 timestamp: stays true in a display that is not redrawn."""
    when = parse_iso(timestamp)
    return when.strftime("%H:%M:%S UTC") if when else "-"


def elapsed(snapshot: JobSnapshot, now: datetime | None = None) -> str:
    """Run time: start to completion, or start to now while the job runs."""
    start = parse_iso(snapshot.start_time) or parse_iso(snapshot.created)
    if start is None:
        return "-"
    end = parse_iso(snapshot.completion_time) or now or datetime.now(UTC)
    return format_duration((end - start).total_seconds())


def badge_html(state: str, colours: dict[str, str] = STATE_COLOURS) -> str:
    colour = colours.get(state, "#607d8b")
    return (
        f'<span class="kfj-badge kfj-badge-{html.escape(state.lower())}" '
        f'style="background:{colour};color:#fff;border-radius:8px;padding:1px 8px;'
        f'font-size:0.9em;white-space:nowrap">{html.escape(state)}</span>'
    )


def finished_replicas(snapshot: JobSnapshot) -> int:
    """Replicas whose process/pod has ended (Succeeded, Failed, or Stopped at the job's end)."""
    return sum(1 for r in snapshot.replicas if r.phase in ENDED_PHASES)


def summary_row(snapshot: JobSnapshot, now: datetime | None = None) -> tuple[str, ...]:
    counts = snapshot.counts()
    return (
        snapshot.name,
        snapshot.state,
        str(counts["active"]),
        str(counts["succeeded"]),
        str(counts["failed"]),
        age(snapshot.created, now),
        snapshot.backend,
    )


def replica_row(replica) -> tuple[str, ...]:
    return (
        replica.id,
        replica.type,
        str(replica.index),
        replica.phase,
        str(replica.restarts),
        "-" if replica.exit_code is None else str(replica.exit_code),
        clock(replica.started_at),
    )


# -- plain text ----------------------------------------------------------
def text_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns separated by three spaces, like ``kubectl get``."""
    rows = [tuple(columns)] + [tuple(r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows)


def jobs_text(snapshots: Sequence[JobSnapshot]) -> str:
    if not snapshots:
        return "No TFJobs."
    return text_table(SUMMARY_COLUMNS, (summary_row(s) for s in snapshots))


def snapshot_text(snapshot: JobSnapshot) -> str:
    """Summary line, replicas, and the message of the current condition."""
    parts = [
        text_table(SUMMARY_COLUMNS, [summary_row(snapshot)]),
        "",
        text_table(REPLICA_COLUMNS, (replica_row(r) for r in snapshot.replicas)),
    ]
    if snapshot.message:
        parts += ["", f"{snapshot.state}: {snapshot.message}"]
    return "\n".join(parts)


# -- HTML ------------------------------------------------------------------
def html_table(columns: Sequence[str], rows: Iterable[Sequence[str]], *, raw_columns: tuple[int, ...] = ()) -> str:
    """An HTML table; cells are escaped except the ``raw_columns`` (already HTML)."""
    head = "".join(f'<th style="{_CELL_STYLE}">{html.escape(c)}</th>' for c in columns)
    body = []
    for row in rows:
        cells = "".join(
            f'<td style="{_CELL_STYLE}">{cell if i in raw_columns else html.escape(cell)}</td>'
            for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f'<table class="kfj-table" style="{_TABLE_STYLE}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _summary_html_rows(snapshots: Sequence[JobSnapshot]) -> list[tuple[str, ...]]:
    rows = []
    for s in snapshots:
        row = list(summary_row(s))
        row[0] = f"<b>{html.escape(row[0])}</b>"
        row[1] = badge_html(row[1])
        rows.append(tuple(row))
    return rows


def jobs_html(snapshots: Sequence[JobSnapshot]) -> str:
    if not snapshots:
        return "<p><i>No TFJobs.</i></p>"
    return html_table(SUMMARY_COLUMNS, _summary_html_rows(snapshots), raw_columns=(0, 1))


#: what a Stopped replica's EXIT CODE cell says: its 143 (SIGTERM) is the runner's doing, not a failure
STOPPED_AT_END = "stopped when the job finished"


def replicas_html(snapshot: JobSnapshot) -> str:
    rows = []
    for r in snapshot.replicas:
        row = list(replica_row(r))
        row[3] = badge_html(r.phase, PHASE_COLOURS)
        if r.phase == STOPPED:
            said = STOPPED_AT_END if snapshot.finished else "stopped"
            code = "" if r.exit_code is None else f"exit code {r.exit_code}: "
            row[5] = f'<span title="{html.escape(code + (r.message or said))}">{html.escape(said)}</span>'
        else:
            row[5] = html.escape(row[5])
        rows.append(tuple(row))
    return html_table(REPLICA_COLUMNS, rows, raw_columns=(3, 5))


def snapshot_html(snapshot: JobSnapshot) -> str:
    parts = [jobs_html([snapshot])]
    if snapshot.replicas:
        parts.append(f'<div style="margin-top:6px">{replicas_html(snapshot)}</div>')
    if snapshot.message:
        parts.append(f"<p>{html.escape(snapshot.state)}: {html.escape(snapshot.message)}</p>")
    return "".join(parts)


def error_html(message: str) -> str:
    return f'<pre class="kfj-error" style="color:var(--jp-error-color1,#c62828)">{html.escape(message)}</pre>'


class JobTable:
    """What ``%tfjob list`` returns: a sequence of snapshots that displays as a table."""

    def __init__(self, snapshots: Sequence[JobSnapshot]):
        self.snapshots = list(snapshots)

    def __len__(self) -> int:
        return len(self.snapshots)

    def __iter__(self):
        return iter(self.snapshots)

    def __getitem__(self, index: int) -> JobSnapshot:
        return self.snapshots[index]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.snapshots]

    def _repr_html_(self) -> str:
        return jobs_html(self.snapshots)

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(jobs_text(self.snapshots))

    def __str__(self) -> str:
        return jobs_text(self.snapshots)


class LogText(str):
    """A replica's log as one string that shows as plain lines (not a quoted repr) in a cell."""

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(str(self))


def progress_key(snapshot: JobSnapshot) -> tuple[str, int, int]:
    """What a progress display shows, minus the clock: redraw only when this changes."""
    return snapshot.state, finished_replicas(snapshot), len(snapshot.replicas)


def progress_bundle(snapshot: JobSnapshot) -> dict[str, str]:
    """A display bundle for ``%tfjob wait``: an HTML progress bar, a text bar for terminals."""
    done, total = finished_replicas(snapshot), len(snapshot.replicas)
    width = 20
    filled = round(width * done / total) if total else 0
    text = (
        f"{snapshot.name}: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} replicas finished"
        f" · {snapshot.state} · {elapsed(snapshot)}"
    )
    colour = STATE_COLOURS.get(snapshot.state, "#607d8b")
    html_bar = (
        f'<div class="kfj-wait" style="display:flex;gap:10px;align-items:center">'
        f"<b>{html.escape(snapshot.name)}</b>"
        f'<progress value="{done}" max="{max(total, 1)}" style="width:200px;accent-color:{colour}"></progress>'
        f"<span>{done}/{total} replicas finished</span>{badge_html(snapshot.state)}"
        f"<span>{html.escape(elapsed(snapshot))}</span></div>"
    )
    return {"text/plain": text, "text/html": html_bar}
