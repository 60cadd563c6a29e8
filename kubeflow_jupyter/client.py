"""The Python API every front end calls: magics, widgets, CLI, REST handlers.

from kubeflow_jupyter.client import TFJobClient
client = TFJobClient()                       # local, or Kubernetes when a cluster is configured
sub = client.submit(Path("examples/tf_sample.yaml"))
client.wait(sub.name)
print("\\n".join(client.logs(sub.name, "master-0")))
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from .backends import Backend, get_backend, resolve_backend_name
from .errors import BackendError, FieldProblem, JobFailed, OptionError, SpecError, WaitTimeout
from .tfjob import parse_tfjob
from .tfjob.load import read_file
from .tfjob.model import ParseResult
from .tfjob.spec import split_command
from .tfjob.status import FAILED, UNKNOWN, JobSnapshot, supersedes

SpecSource = str | bytes | dict | os.PathLike

#: ``--tail``: more lines than any sidebar or terminal shows (and an int every backend takes).
MAX_TAIL = 1_000_000
#: ``--timeout``: a year, in seconds; longer (or inf/nan) is a typo, and overflows timers.
MAX_TIMEOUT = 366 * 24 * 3600.0


@dataclass
class Submission:
    """What ``submit`` returns: the job's first snapshot and what the user should read."""

    name: str
    manifest: dict  # the kubeflow.org/v1 manifest that was (or, with dry_run, would be) created
    snapshot: JobSnapshot | None  # None for a dry run
    notices: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False


def read_spec(source: SpecSource) -> str | bytes | dict:
    """A PathLike is read from disk (at most the manifest limit + 1 byte: a bigger file, a
    directory or a device is a SpecError); str/bytes are YAML text; dict is a parsed manifest."""
    if isinstance(source, os.PathLike):
        return read_file(Path(source))
    return source


def check_tail(tail: int | None) -> int | None:
    """``--tail``: None, or an integer from 0 to MAX_TAIL (OptionError otherwise)."""
    if tail is None:
        return None
    if isinstance(tail, bool) or not isinstance(tail, int) or not 0 <= tail <= MAX_TAIL:
        raise OptionError(f"--tail must be an integer from 0 to {MAX_TAIL:,} (got {tail!r:.40})")
    return tail


def check_timeout(timeout: float | None) -> float | None:
    """``--timeout``: None, or a finite number of seconds from 0 to MAX_TIMEOUT (OptionError otherwise)."""
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or not 0 <= timeout <= MAX_TIMEOUT
    ):
        raise OptionError(
            f"--timeout must be a number of seconds from 0 to {MAX_TIMEOUT:,.0f} (366 days) (got {timeout!r:.40})"
        )
    return float(timeout)


def namespace_problem(theirs: object, ours: str) -> FieldProblem | None:
    """The namespace rule, for every backend: a manifest's ``metadata.namespace`` (when it names
    one) must be the namespace the client works in; jobs are never created elsewhere (kubectl
    refuses such an object the same way when given ``--namespace``)."""
    if theirs in (None, "", ours):
        return None
    return FieldProblem(
        "metadata.namespace",
        f"{theirs!r} is not the namespace this client works in ({ours!r}): "
        f"remove metadata.namespace, or use --namespace {theirs}",
    )


class TFJobClient:
    """Submit, watch, read and delete TFJobs on one backend."""

    def __init__(
        self,
        backend: str | Backend | None = None,
        *,
        namespace: str | None = None,
        request_timeout: float | None = None,
        watch_timeout: int | None = None,
        **options,
    ):
        """``backend``: a name (see :func:`~kubeflow_jupyter.backends.get_backend`) or a backend.
        ``namespace``: where jobs go (else ``$KUBEFLOW_JUPYTER_NAMESPACE``, else the backend's default).
        ``request_timeout`` (seconds per API request) and ``watch_timeout`` (seconds one watch
        request lives before it is renewed) tune the Kubernetes backend: None keeps its defaults,
        and the local backend, which makes no API requests, ignores them."""
        if backend is None or isinstance(backend, str):
            name = resolve_backend_name(backend, context=options.get("context"), kubeconfig=options.get("kubeconfig"))
            if name == "kubernetes":
                options.update(
                    {
                        key: value
                        for key, value in (("request_timeout", request_timeout), ("watch_timeout", watch_timeout))
                        if value is not None
                    }
                )
            backend = get_backend(name, namespace=namespace, **options)
        self.backend: Backend = backend

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def namespace(self) -> str:
        return self.backend.namespace

    # -- submit ----------------------------------------------------------
    def prepare(
        self, source: SpecSource, *, name: str | None = None, command: str | list[str] | None = None
    ) -> ParseResult:
        """Parse, convert and validate without side effects; apply ``--name``/``--command``; place
        the job in the client's namespace.

        The one place every front end (CLI, REST, magics) goes through: ``command`` must split
        like a shell command line, and the result must fit the manifest limit. It alone decides
        a job's namespace: the client's (``--namespace``, else ``$KUBEFLOW_JUPYTER_NAMESPACE``,
        else the backend's default); a manifest naming another one is refused."""
        argv = split_command(command)  # before reading: a bad --command costs no I/O
        parsed = parse_tfjob(read_spec(source), name=name, command=argv)
        if (problem := namespace_problem(parsed.job.namespace, self.namespace)) is not None:
            raise SpecError(problem)
        return replace(parsed, job=parsed.job.in_namespace(self.namespace))

    def submit(
        self,
        source: SpecSource,
        *,
        name: str | None = None,
        command: str | list[str] | None = None,
        dry_run: bool = False,
        workdir: str | os.PathLike | None = None,
    ) -> Submission:
        parsed = self.prepare(source, name=name, command=command)
        job = parsed.job
        workdir = str(workdir) if workdir else os.getcwd()
        snapshot = self.backend.create(job, workdir=workdir, dry_run=dry_run)
        return Submission(
            name=job.name,
            manifest=job.to_manifest(),
            snapshot=None if dry_run else snapshot,
            notices=list(parsed.notices),
            warnings=list(parsed.warnings),
            dry_run=dry_run,
        )

    # -- read ------------------------------------------------------------
    def get(self, name: str) -> JobSnapshot:
        return self.backend.get(name)

    def list(self) -> list[JobSnapshot]:
        return self.backend.list()

    def manifest(self, name: str) -> dict:
        return self.backend.manifest(name)

    def watch(
        self, name: str | None = None, *, timeout: float | None = None, stop: threading.Event | None = None
    ) -> Iterator[JobSnapshot]:
        """The backend's watch, newest states only: an update older than (or the same as) one
        already yielded for that job is dropped (see :func:`tfjob.status.supersedes`)."""
        return newest_only(self.backend.watch(name, timeout=timeout, stop=stop))

    def logs(
        self,
        name: str,
        replica: str | None = None,
        *,
        follow: bool = False,
        tail: int | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        """A replica's log lines; with ``follow``, live until the replica ends or ``stop`` is set."""
        tail = check_tail(tail)
        return self.backend.logs(name, replica, follow=follow, tail=tail, stop=stop)

    def wait(
        self,
        name: str,
        *,
        timeout: float | None = None,
        on_update: Callable[[JobSnapshot], None] | None = None,
        raise_on_failure: bool = True,
    ) -> JobSnapshot:
        """Block until the job finishes; return the final snapshot.

        Raises JobFailed (when ``raise_on_failure``), WaitTimeout, JobNotFound, OptionError.
        """
        timeout = check_timeout(timeout)
        last: JobSnapshot | None = None
        for snap in self.watch(name, timeout=timeout):
            last = snap
            if on_update:
                on_update(snap)
            if snap.state == UNKNOWN:
                raise BackendError(f"cannot wait for TFJob {name!r}: {snap.message}")
            if snap.finished:
                break
        if last is None or not last.finished:
            last = self.backend.get(name)
            if not last.finished:
                raise WaitTimeout(name, timeout or 0.0, last.state)
        if raise_on_failure and last.state == FAILED:
            raise JobFailed(last)
        return last

    # -- delete ----------------------------------------------------------
    def delete(self, name: str) -> None:
        self.backend.delete(name)


def newest_only(snapshots: Iterator[JobSnapshot]) -> Iterator[JobSnapshot]:
    """Pass each snapshot on only when it supersedes the newest one seen of its job."""
    newest: dict[str, JobSnapshot] = {}
    try:
        for snap in snapshots:
            if supersedes(snap, newest.get(snap.name)):
                newest[snap.name] = snap
                yield snap
    finally:
        close = getattr(snapshots, "close", None)
        if close is not None:
            close()  # end the backend's watch now (its threads, its open streams)
