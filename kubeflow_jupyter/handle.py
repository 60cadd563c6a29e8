"""A handle on one submitted TFJob: what ``job = %tfjob submit f.yaml`` gives back.

Every method goes through :class:`~kubeflow_jupyter.client.TFJobClient`; the handle
holds no job logic, only the name and the client. It displays as the job's current
status table (HTML in JupyterLab, text in a terminal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import job_display
from .errors import KubeflowJupyterError

if TYPE_CHECKING:  # the monitor imports ipywidgets: only when .watch() is called
    import pandas

    from .client import Submission, TFJobClient
    from .tfjob.status import JobSnapshot
    from .widgets.job_monitor import JobMonitor


class TFJobHandle:
    """``job.status``, ``job.logs()``, ``job.wait()``, ``job.delete()``, ``job.watch()``,
    ``job.result()`` (a run-job's value), ``job.metrics()`` (a DataFrame), ``job.tensorboard()``.

    Unlike the magics (which print errors), these methods raise
    :class:`~kubeflow_jupyter.errors.KubeflowJupyterError` subclasses, e.g.
    ``JobFailed`` from ``wait()``, so that a failing job stops "Run All".
    """

    def __init__(self, client: TFJobClient, name: str, submission: Submission | None = None):
        self.client = client
        self.name = name
        self.submission = submission
        #: the finished snapshot, when this handle waited for the job (``run(wait=True)``)
        self.final: JobSnapshot | None = None

    @property
    def status(self) -> JobSnapshot:
        """The job's current snapshot (``.state``, ``.replicas``, ``.conditions``...)."""
        return self.client.get(self.name)

    @property
    def state(self) -> str:
        return self.status.state

    @property
    def manifest(self) -> dict:
        return self.client.manifest(self.name)

    def logs(self, replica: str | None = None, *, tail: int | None = None) -> job_display.LogText:
        """One replica's log so far (default: the chief/master, else worker-0)."""
        return job_display.LogText("\n".join(self.client.logs(self.name, replica, tail=tail)))

    def wait(self, timeout: float | None = None) -> JobSnapshot:
        """Block until the job finishes; raises JobFailed / WaitTimeout."""
        return self.client.wait(self.name, timeout=timeout)

    def delete(self) -> None:
        self.client.delete(self.name)

    def result(self, timeout: float | None = None, *, allow_pickle: bool = True):
        """A run-job's value (``%%tfjob run``, ``client.run``): waits until the job finishes, then
        reads the result replica's log, so it works from a fresh handle or another kernel.
        Raises RemoteError (``worker-1 raised ValueError: ...``), ResultError, WaitTimeout."""
        return self.client.result(self.name, timeout=timeout, allow_pickle=allow_pickle, snapshot=self.final)

    def metrics(self, replica: str | None = None, *, tail: int | None = None) -> pandas.DataFrame:
        """The training metrics so far: columns ``replica``, ``step``, then one per metric, from the
        replicas' ``step=… loss=…`` log lines and the event files in $TFJOB_LOGDIR (docs/metrics.md).
        ``replica``: None (the chief/master, else worker-0), ``"all"``, or a replica id."""
        return self.client.metrics(self.name, replica, tail=tail)

    def tensorboard(self):
        """A TensorBoard on the job's logdir (shows inline; ``.url``), started once and reused;
        on a cluster, Kubeflow's ``Tensorboard`` owned by the TFJob. Raises TensorBoardUnavailable."""
        return self.client.tensorboard(self.name)

    @property
    def logdir(self) -> str | None:
        """Where the replicas write event files ($TFJOB_LOGDIR): a local path, or ``pvc://…``."""
        return self.client.logdir(self.name)

    def watch(self) -> JobMonitor:
        """A live :class:`~kubeflow_jupyter.widgets.job_monitor.JobMonitor` (shows when last in a cell)."""
        from .widgets.job_monitor import JobMonitor

        return JobMonitor(self.client, self.name)

    def __repr__(self) -> str:
        return f"TFJobHandle(name={self.name!r}, backend={self.client.backend_name!r}, namespace={self.client.namespace!r})"

    def _repr_html_(self) -> str:
        try:
            return job_display.snapshot_html(self.status)
        except KubeflowJupyterError as e:  # e.g. deleted since: show why instead of a formatter traceback
            return job_display.error_html(str(e))

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        try:
            printer.text(job_display.snapshot_text(self.status))
        except KubeflowJupyterError as e:
            printer.text(str(e))
