"""The one protocol every backend implements (local processes, Kubernetes).

Front ends never call a backend directly: they call :class:`kubeflow_jupyter.client.TFJobClient`.
"""

from __future__ import annotations

import threading
from typing import Iterator, Protocol, runtime_checkable

from ..tfjob.model import TFJob
from ..tfjob.status import JobSnapshot


@runtime_checkable
class Backend(Protocol):
    #: "local" or "kubernetes": shown in every status display.
    name: str
    #: the namespace jobs live in (``DEFAULT_NAMESPACE`` locally unless asked otherwise).
    namespace: str

    def create(self, job: TFJob, *, workdir: str | None = None, dry_run: bool = False) -> JobSnapshot:
        """Create the job and return its first snapshot (state Created).

        ``workdir``: where relative paths in the command resolve (local backend;
        the container's ``workingDir`` wins). ``dry_run``: validate fully as the
        backend would (server-side dry run on Kubernetes) and create nothing.
        Raises AlreadyExists, SpecError (backend-side validation), BackendError.
        """

    def get(self, name: str) -> JobSnapshot:
        """Current snapshot. Raises JobNotFound."""

    def list(self) -> list[JobSnapshot]:
        """Every job of the namespace, newest first."""

    def manifest(self, name: str) -> dict:
        """The full ``kubeflow.org/v1`` object as stored, status included."""

    def watch(
        self,
        name: str | None = None,
        *,
        timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[JobSnapshot]:
        """Yield the current snapshot(s) at once, then each change as it happens (push, ~0.1 s).

        With ``name``: ends after yielding the finished (Succeeded/Failed) snapshot,
        or raises JobNotFound if the job is deleted. Without: every job of the
        namespace, forever. Also ends when ``stop`` is set or ``timeout`` passes.
        """

    def logs(
        self,
        name: str,
        replica: str | None = None,
        *,
        follow: bool = False,
        tail: int | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        """Lines (without newline) of one replica's log (``"worker-0"``; default: the
        chief/master, else worker-0). ``follow`` keeps yielding until the replica ends,
        or until ``stop`` is set: then the iterator ends within ~0.1 s even while the
        replica prints nothing (set it from any thread). Raises JobNotFound, ReplicaNotFound."""

    def delete(self, name: str) -> None:
        """Delete the job and stop every replica. Raises JobNotFound."""
