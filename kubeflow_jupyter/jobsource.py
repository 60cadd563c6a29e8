"""What code that reads a job needs from a client: its state, its logs, waiting for its end.

:class:`~kubeflow_jupyter.client.TFJobClient` satisfies it. The modules that work on a job and
sit below the client (``runcell``, ``metrics``) name this protocol, not the client, so that no
import runs back up from them to the client that uses them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from .backends.base import Stop
from .tfjob.status import JobSnapshot


class JobSource(Protocol):
    #: the backend the jobs live on (its ``logdir(name)``, where it has one)
    backend: Any

    def get(self, name: str) -> JobSnapshot: ...

    def logs(
        self, name: str, replica: str | None = None, *, follow: bool = False, tail: int | None = None, stop: Stop = None
    ) -> Iterator[str]: ...

    def wait(
        self,
        name: str,
        *,
        timeout: float | None = None,
        on_update: Callable[[JobSnapshot], None] | None = None,
        raise_on_failure: bool = True,
    ) -> JobSnapshot: ...
