"""The one protocol every backend implements (local processes, Kubernetes).

Front ends never call a backend directly: they call :class:`kubeflow_jupyter.client.TFJobClient`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

from ..errors import BackendError
from ..tfjob.model import TFJob
from ..tfjob.status import JobSnapshot

if TYPE_CHECKING:
    from ..runcell.payload import Payload

#: ``stop`` of a watch or a followed log: once the event is set (from any thread), the iteration ends.
Stop: TypeAlias = threading.Event | None


def require_namespace(job: TFJob, namespace: str) -> None:
    """A backend creates only what :meth:`TFJobClient.prepare` made for its namespace: the client
    alone decides a job's namespace (and refuses a manifest that names another one)."""
    if job.namespace != namespace:
        raise BackendError(
            f"TFJob {job.name!r} was prepared for namespace {job.namespace!r}, but this backend "
            f"works in {namespace!r}: submit it through TFJobClient, which sets the namespace"
        )


@runtime_checkable
class Backend(Protocol):
    #: "local" or "kubernetes": shown in every status display.
    name: str
    #: the namespace jobs live in (``DEFAULT_NAMESPACE`` locally unless asked otherwise).
    namespace: str

    def create(
        self, job: TFJob, *, workdir: str | None = None, dry_run: bool = False, payload: Payload | None = None
    ) -> JobSnapshot:
        """Create the job and return its first snapshot (state Created).

        ``job`` comes from :meth:`TFJobClient.prepare`: its namespace is this backend's
        (:func:`require_namespace`).

        ``workdir``: where relative paths in the command resolve (local backend;
        the container's ``workingDir`` wins). ``dry_run``: validate fully as the
        backend would (server-side dry run on Kubernetes) and create nothing.
        ``payload``: a run (:mod:`kubeflow_jupyter.runcell`): ``job`` comes from
        :meth:`payload_job` and the backend delivers the payload's files to every replica (the
        local store's snapshot; a ConfigMap owned by the TFJob on Kubernetes).
        Raises AlreadyExists, SpecError (backend-side validation), BackendError, PayloadTooLarge.
        """

    def payload_job(self, job: TFJob, payload: Payload) -> tuple[TFJob, list[dict]]:
        """(``job`` with every replica running ``payload`` this backend's way, the other objects
        ``create`` makes with it: what a dry run shows). Raises PayloadTooLarge before anything
        exists."""

    def get(self, name: str) -> JobSnapshot:
        """Current snapshot. Raises JobNotFound."""

    def list(self) -> list[JobSnapshot]:
        """Every job of the namespace, newest first."""

    def manifest(self, name: str) -> dict:
        """The full ``kubeflow.org/v1`` object as stored, status included."""

    def watch(
        self, name: str | None = None, *, timeout: float | None = None, stop: Stop = None
    ) -> Iterator[JobSnapshot]:
        """Yield the current snapshot(s) at once, then each change as it happens (push, ~0.1 s).

        With ``name``: ends after yielding the finished (Succeeded/Failed) snapshot,
        or raises JobNotFound if the job is deleted. Without: every job of the
        namespace, forever. Also ends when ``stop`` is set or ``timeout`` passes.
        """

    def logs(
        self, name: str, replica: str | None = None, *, follow: bool = False, tail: int | None = None, stop: Stop = None
    ) -> Iterator[str]:
        """Lines (without newline) of one replica's log (``"worker-0"``; default: the
        chief/master, else worker-0). ``follow`` keeps yielding until the replica ends,
        or until ``stop`` is set: then the iterator ends within ~0.1 s even while the
        replica prints nothing (set it from any thread). Raises JobNotFound, ReplicaNotFound."""

    def delete(self, name: str) -> None:
        """Delete the job and stop every replica. Raises JobNotFound."""
