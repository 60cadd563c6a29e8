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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backends import Backend, get_backend, resolve_backend_name
from .backends.base import Stop
from .errors import BackendError, FieldProblem, JobFailed, OptionError, SpecError, WaitTimeout
from .tfjob import parse_tfjob
from .tfjob.load import read_file
from .tfjob.model import ANNOTATION_LOGDIR, ParseResult
from .tfjob.spec import STRICT, split_command
from .tfjob.status import FAILED, UNKNOWN, JobSnapshot, supersedes

if TYPE_CHECKING:
    import pandas

    from .handle import TFJobHandle
    from .runcell.payload import Payload

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
    #: what is created with the TFJob (a run-job's ConfigMap on Kubernetes): shown by a dry run
    objects: list[dict] = field(default_factory=list)


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


def check_logdir(logdir: object, where: str) -> str:
    """A job's logdir: ``pvc://CLAIM/SUBPATH`` (OptionError for ``--logdir``, SpecError for the annotation)."""
    from .metrics.tensorboard import parse_pvc_logdir

    try:
        if not isinstance(logdir, str):
            raise OptionError(f"{where} must be a string pvc://CLAIM/SUBPATH, got {logdir!r:.60}")
        parse_pvc_logdir(logdir)
    except OptionError as e:
        if where == "--logdir":
            raise
        raise SpecError(FieldProblem(where, str(e).replace("--logdir on a cluster", "a logdir"))) from None
    return logdir


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


def verb_options(method: Callable, parsed: object) -> dict[str, Any]:
    """The keyword arguments of a client ``method`` that a parsed verb (an argparse namespace)
    carries. The verb table (verbs.py) names each option after the keyword it feeds, so the CLI and
    ``%tfjob`` pass them on without listing them again; what the method does not take (``--wait``,
    ``--watch``, the global options) stays behind."""
    import inspect

    keywords = {p.name for p in inspect.signature(method).parameters.values() if p.kind is p.KEYWORD_ONLY}
    return {key: value for key, value in vars(parsed).items() if key in keywords}


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
        self,
        source: SpecSource,
        *,
        name: str | None = None,
        command: str | list[str] | None = None,
        logdir: str | None = None,
        validate: str = STRICT,
    ) -> ParseResult:
        """Parse, convert and validate without side effects; apply ``--name``/``--command``/``--logdir``;
        place the job in the client's namespace.

        The one place every front end (CLI, REST, magics) goes through: ``command`` must split
        like a shell command line, and the result must fit the manifest limit. It alone decides
        a job's namespace: the client's (``--namespace``, else ``$KUBEFLOW_JUPYTER_NAMESPACE``,
        else the backend's default); a manifest naming another one is refused. ``validate``:
        kubectl's ``--validate`` (strict refuses unknown fields, warn drops them with a warning,
        ignore drops them)."""
        argv = split_command(command)  # before reading: a bad --command costs no I/O
        parsed = parse_tfjob(read_spec(source), name=name, command=argv, validate=validate)
        if (problem := namespace_problem(parsed.job.namespace, self.namespace)) is not None:
            raise SpecError(problem)
        job = parsed.job.in_namespace(self.namespace)
        notices = list(parsed.notices)
        if logdir is not None:
            check_logdir(logdir, "--logdir")
            job = job.with_logdir(logdir)
        elif job.logdir is not None:
            check_logdir(job.logdir, f"metadata.annotations[{ANNOTATION_LOGDIR}]")
        if job.logdir is not None and self.backend_name == "local":
            notices.append(
                f"logdir {job.logdir} is for a cluster: locally every replica writes into the job's own "
                f"directory, $TFJOB_LOGDIR (%tfjob metrics and %tfjob tensorboard read it)"
            )
        return replace(parsed, job=job, notices=notices)

    def submit(
        self,
        source: SpecSource,
        *,
        name: str | None = None,
        command: str | list[str] | None = None,
        dry_run: bool = False,
        workdir: str | os.PathLike | None = None,
        logdir: str | None = None,
        validate: str = STRICT,
    ) -> Submission:
        """``logdir``: ``pvc://CLAIM/SUBPATH``, mounted in every replica on a cluster ($TFJOB_LOGDIR
        names it); locally every job has its own logdir whatever is given. ``validate``: see
        :meth:`prepare`."""
        parsed = self.prepare(source, name=name, command=command, logdir=logdir, validate=validate)
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

    # -- run code ----------------------------------------------------------
    def run(
        self,
        fn: Callable,
        *args,
        workers: int = 1,
        ps: int = 0,
        chief: bool = False,
        evaluator: bool = False,
        image: str | None = None,
        packages: tuple[str, ...] | list[str] = (),
        files: tuple[str, ...] | list[str] = (),
        env: dict[str, str] | None = None,
        name: str | None = None,
        wait: bool = True,
        dry_run: bool = False,
        root: str | os.PathLike | None = None,
        timeout: float | None = None,
        logdir: str | None = None,
        **kwargs,
    ) -> TFJobHandle | Submission:
        """Call ``fn(*args, **kwargs)`` on every replica of a new TFJob; its return value on the
        result replica (chief, else worker-0) is ``handle.result()``.

        ``fn`` travels by source (see :mod:`kubeflow_jupyter.runcell.shipping`: a function defined
        with ``def``; what it uses from importable modules is imported on the replicas, other
        notebook functions it calls are shipped too; a lambda, a closure or a notebook variable is
        refused with one line saying what to do). Arguments travel as JSON, else by pickle.
        ``files``: paths relative to ``root`` (default: the current directory, the notebook's),
        shipped beside the code; ``packages``: pip-installed in the container (Kubernetes), or
        required to be installed already (local). ``image`` (Kubernetes): default
        ``tensorflow/tensorflow:<the installed TensorFlow version>``. The option names above are
        this method's: ``fn`` cannot receive keyword arguments with those names. ``logdir``: as
        :meth:`submit`'s.

        With ``wait`` (default), returns once the job has finished (``result()`` raises the
        remote error, if any); ``dry_run`` returns the :class:`Submission` that would be created."""
        from .runcell import build_function_payload

        def build(result_replica: str, root: str) -> Payload:
            return build_function_payload(fn, args, kwargs, files, packages, root=root, result_replica=result_replica)

        return self._run(build, workers, ps, chief, evaluator, image, env, name, wait, dry_run, root, timeout, logdir)

    def run_cell(
        self,
        code: str,
        *,
        workers: int = 1,
        ps: int = 0,
        chief: bool = False,
        evaluator: bool = False,
        image: str | None = None,
        packages: tuple[str, ...] | list[str] = (),
        files: tuple[str, ...] | list[str] = (),
        env: dict[str, str] | list[str] | None = None,
        name: str | None = None,
        wait: bool = True,
        dry_run: bool = False,
        root: str | os.PathLike | None = None,
        timeout: float | None = None,
        logdir: str | None = None,
    ) -> TFJobHandle | Submission:
        """Run a notebook cell's code (plain Python: IPython syntax is refused, naming the line) on
        every replica; the value of its last expression on the result replica is ``result()``.
        The options are :meth:`run`'s."""
        from .runcell import build_cell_payload

        def build(result_replica: str, root: str) -> Payload:
            return build_cell_payload(code, files, packages, root=root, result_replica=result_replica)

        return self._run(build, workers, ps, chief, evaluator, image, env, name, wait, dry_run, root, timeout, logdir)

    def _run(self, build, workers, ps, chief, evaluator, image, env, name, wait, dry_run, root, timeout, logdir=None):
        from .handle import TFJobHandle
        from .runcell import jobs

        payload_job = getattr(self.backend, "payload_job", None)
        if payload_job is None:
            raise BackendError(f"the {self.backend_name} backend cannot run code (it has no payload_job)")
        layout = jobs.replica_layout(workers, ps, chief, evaluator)
        environment = jobs.parse_env(env)
        timeout = check_timeout(timeout)
        root = str(root) if root else os.getcwd()
        payload = build(jobs.result_replica(layout), root)  # refusals (syntax, shipping, files) before anything
        manifest = jobs.run_manifest(
            name or jobs.random_name(), payload.description, payload.kind, layout, image=image, env=environment
        )
        parsed = self.prepare(manifest, logdir=logdir)
        job, objects = payload_job(parsed.job, payload)
        snapshot = self.backend.create(job, workdir=root, dry_run=dry_run, payload=payload)
        sub = Submission(
            name=job.name,
            manifest=job.to_manifest(),
            snapshot=None if dry_run else snapshot,
            notices=list(parsed.notices),
            warnings=list(parsed.warnings),
            dry_run=dry_run,
            objects=objects,
        )
        if dry_run:
            return sub
        handle = TFJobHandle(self, job.name, sub)
        if wait:
            handle.final = self.wait(job.name, timeout=timeout, raise_on_failure=False)
        return handle

    def result(
        self,
        name: str,
        *,
        timeout: float | None = None,
        allow_pickle: bool = True,
        snapshot: JobSnapshot | None = None,
    ):
        """A run-job's value (waits until it finishes); raises RemoteError when the code raised
        on a replica (naming it), ResultError when no result can be delivered. It is read from
        the result replica's log, so it works from any kernel, as long as the job exists."""
        from .runcell import jobs

        return jobs.job_result(self, name, timeout=check_timeout(timeout), allow_pickle=allow_pickle, snapshot=snapshot)

    # -- read ------------------------------------------------------------
    def get(self, name: str) -> JobSnapshot:
        return self.backend.get(name)

    def list(self) -> list[JobSnapshot]:
        return self.backend.list()

    def manifest(self, name: str) -> dict:
        return self.backend.manifest(name)

    def watch(
        self, name: str | None = None, *, timeout: float | None = None, stop: Stop = None
    ) -> Iterator[JobSnapshot]:
        """The backend's watch, newest states only: an update older than (or the same as) one
        already yielded for that job is dropped (see :func:`tfjob.status.supersedes`)."""
        return newest_only(self.backend.watch(name, timeout=timeout, stop=stop))

    def logs(
        self, name: str, replica: str | None = None, *, follow: bool = False, tail: int | None = None, stop: Stop = None
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

    # -- metrics -----------------------------------------------------------
    def logdir(self, name: str) -> str | None:
        """Where the job's replicas write event files ($TFJOB_LOGDIR): a local directory, or on a
        cluster the ``pvc://CLAIM/SUBPATH`` it mounts; None when the job has none."""
        logdir = getattr(self.backend, "logdir", None)
        return logdir(name) if logdir is not None else None

    def metrics(self, name: str, replica: str | None = None, *, tail: int | None = None) -> pandas.DataFrame:
        """The job's training metrics now, a wide DataFrame (columns ``replica``, ``step``, then one
        per metric): the records its replicas' logs hold (``step=3 loss=0.5``, see
        :func:`kubeflow_jupyter.report`) merged on step with the scalars of the event files in its
        logdir, when this machine can read it. ``replica``: None (the chief/master, else worker-0),
        ``"all"`` or a replica id. See docs/metrics.md."""
        from .metrics.follow import collect

        tail = check_tail(tail)
        logdir = self.logdir(name)
        readable = logdir if logdir and not logdir.startswith("pvc://") else None
        return collect(self, name, replica, logdir=readable, tail=tail)

    def tensorboard(self, name: str):
        """A TensorBoard for the job: locally a process on its logdir (``.url``; shows inline through
        the Jupyter server), on a cluster Kubeflow's ``Tensorboard`` owned by the TFJob. Raises
        TensorBoardUnavailable (the one line saying what is missing), JobNotFound."""
        from .metrics.tensorboard import TensorBoard, TensorBoardUnavailable

        start = getattr(self.backend, "tensorboard", None)
        if start is None:
            raise TensorBoardUnavailable(f"the {self.backend_name} backend cannot run a TensorBoard")
        board = start(name)
        return board.for_this_kernel() if isinstance(board, TensorBoard) else board

    # -- delete ----------------------------------------------------------
    def delete(self, name: str) -> None:
        """Delete the job (and the TensorBoard this process runs for it, if any)."""
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
