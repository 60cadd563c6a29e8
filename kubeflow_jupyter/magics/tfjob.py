"""``%tfjob`` / ``%%tfjob``: submit, list, inspect, watch, read and delete TFJobs from a notebook.

Argument parsing and display only: the verbs, options and help come from
:mod:`kubeflow_jupyter.verbs` (shared with the CLI); every verb calls
:class:`~kubeflow_jupyter.client.TFJobClient`. A refused or failed verb raises: the cell fails
(so "Run All" stops there) and shows one line, no traceback (``_render_traceback_``).
"""

from __future__ import annotations

import inspect
import shlex
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from IPython.core.magic import Magics, line_cell_magic, magics_class

from ..errors import NOTEBOOK, JobFailed, UsageError

# The verb table, the client, the domain (and YAML with it) and the display are imported on
# the first %tfjob (or %tfjob?), not by %load_ext: loading the extension stays a few milliseconds.
if TYPE_CHECKING:
    import argparse

    from ..client import TFJobClient
    from ..handle import TFJobHandle
    from ..tfjob.status import JobSnapshot

PROG = "%tfjob"
SNAPSHOT_MODULE = "kubeflow_jupyter.tfjob.status"
SNAPSHOT_TYPE = f"{SNAPSHOT_MODULE}.JobSnapshot"

# (backend, namespace, context, kubeconfig) → client
ClientKey = tuple[str, "str | None", "str | None", "str | None"]
ClientFactory = Callable[[str, "str | None", "str | None", "str | None"], "TFJobClient"]


def _new_client(backend: str, namespace: str | None, context: str | None, kubeconfig: str | None) -> TFJobClient:
    from ..client import TFJobClient

    return TFJobClient(backend, namespace=namespace, context=context, kubeconfig=kubeconfig)


def print_error(message: str) -> None:
    print(message, file=sys.stderr)


@cache
def parser() -> argparse.ArgumentParser:
    """``%tfjob [GLOBAL OPTIONS] VERB ...``: the CLI's verbs and options, as a notebook has them."""
    from ..verbs import VERBS, build_parser

    return build_parser(NOTEBOOK, VERBS, prog=PROG, description="Run and follow TFJobs from the notebook.")


def parse_args(line: str):
    """Split like a POSIX shell, then parse with the verbs' parser (a bad option raises
    :class:`UsageError`, the message the CLI gives for it).

    (IPython's ``parse_argstring`` splits in non-POSIX mode, which keeps the quotes of
    ``--command "python train.py"`` inside the value.)
    """
    try:
        argv = shlex.split(line)
    except ValueError as e:  # e.g. "No closing quotation"
        raise UsageError(f"cannot split the options: {e}", prog=PROG) from None
    return parser().parse_args(argv)


def help_text() -> str:
    """What ``%tfjob?`` adds to the docstring: the verbs, then each verb's own arguments."""
    from ..verbs import GLOBAL_TITLE, verb_parsers

    parts = [parser().format_help()]
    for verb_parser in verb_parsers(parser()).values():
        parts.append(verb_parser.format_help().split(f"\n{GLOBAL_TITLE}:")[0].rstrip())
    return "\n\n".join(parts)


@magics_class
class TFJobMagics(Magics):
    """Holds one client per (backend, namespace, context, kubeconfig) and the job last submitted from this kernel."""

    def __init__(self, shell, client_factory: ClientFactory | None = None):
        super().__init__(shell)
        self.client_factory: ClientFactory = client_factory or _new_client
        self.clients: dict[ClientKey, TFJobClient] = {}
        self.last_job: TFJobHandle | None = None
        self._register_formatters()

    def _register_formatters(self) -> None:
        """Show any JobSnapshot (``%tfjob wait``'s result, ``job.status``) as the status table.

        Registered by name, so that nothing is imported until a snapshot is displayed."""

        def as_html(snap: JobSnapshot) -> str:
            from .. import job_display

            return job_display.snapshot_html(snap)

        def as_text(snap: JobSnapshot, printer, cycle: bool) -> None:
            from .. import job_display

            printer.text(job_display.snapshot_text(snap))

        formatters = self.shell.display_formatter.formatters
        formatters["text/html"].for_type_by_name(SNAPSHOT_MODULE, "JobSnapshot", as_html)
        formatters["text/plain"].for_type_by_name(SNAPSHOT_MODULE, "JobSnapshot", as_text)

    def unregister_formatters(self) -> None:
        """``%unload_ext``: snapshots show as plain dataclasses again."""
        formatters = self.shell.display_formatter.formatters
        for mime in ("text/html", "text/plain"):
            formatters[mime].pop(SNAPSHOT_TYPE, None)

    # -- the magic ----------------------------------------------------------
    @line_cell_magic
    def tfjob(self, line: str, cell: str | None = None):
        """Run and follow TFJobs (distributed TensorFlow training) from the notebook.

        Examples::

            %tfjob submit examples/tfjob-legacy.yaml --command "python examples/tf_sample/tf_sample.py"
            job = %tfjob submit train.yaml --name run-{n}     # {var} expands; job.status, job.logs(), job.wait()
            %%tfjob submit --watch --command "python train.py"
            <TFJob YAML: kubeflow.org/v1 TFJob, or the legacy tensorflow.org/v1alpha1 TfJob>

            %tfjob list                        # also: -o wide|json|yaml
            %tfjob get example-job             # also: %tfjob status example-job; -o wide|json|yaml
            %tfjob watch example-job           # live widget: replicas, progress, conditions, logs, delete
            %tfjob wait example-job --timeout 600
            %tfjob logs example-job --replica worker-0 --follow
            %tfjob delete example-job
            df = %tfjob metrics example-job     # step=… loss=… log lines + $TFJOB_LOGDIR scalars, a DataFrame
            tb = %tfjob tensorboard example-job # TensorBoard on the job's logdir, inline (tb.url)
            %%tfjob run --chief --workers 2 --ps 1 --files helpers.py
            <Python: runs on every replica; its last expression on the chief is Out[n]>
            job = %tfjob result run-x7k2p     # a run-job's value, from any kernel
            %tfjob --backend kubernetes -n team-a list   # global options before or after the verb
            %tfjob logs --help                 # one verb's options

        Without a job name, get/status/watch/logs/wait/delete act on the job last submitted
        from this notebook. The verbs, options and messages are the CLI's (``kubeflow-jupyter``).
        A refused or failed verb (a bad option, an invalid spec, an unknown job, a job that
        fails while ``%tfjob wait`` waits) fails the cell with one message and no traceback,
        so that "Run All" stops there, as ``job.wait()`` does.
        """
        try:
            args = parse_args(line)
        except SystemExit:  # --help: argparse has printed it
            return None
        if cell is not None and args.verb not in ("submit", "run"):
            raise UsageError(
                f"%%tfjob cells take a body for submit only (its YAML) and run (Python code); use %tfjob {args.verb} "
                "on one line"
            )
        return getattr(self, f"_{args.verb}")(args, cell)

    # -- clients and job names --------------------------------------------------
    def client(
        self,
        backend: str | None = None,
        namespace: str | None = None,
        context: str | None = None,
        kubeconfig: str | None = None,
    ) -> TFJobClient:
        """The cached client for this backend/namespace/context/kubeconfig (created on first use)."""
        from ..backends import resolve_backend_name

        key = (resolve_backend_name(backend, context=context, kubeconfig=kubeconfig), namespace, context, kubeconfig)
        if key not in self.clients:
            self.clients[key] = self.client_factory(*key)
        return self.clients[key]

    def _client_for(self, args) -> TFJobClient:
        return self.client(args.backend, args.namespace, args.context, args.kubeconfig)

    def _job(self, args) -> TFJobHandle:
        """The job a verb acts on: the named one, else the last one submitted here."""
        from ..handle import TFJobHandle

        if args.name:
            return TFJobHandle(self._client_for(args), args.name)
        if self.last_job is None:
            raise UsageError(
                f"%tfjob {args.verb} needs a job name: %tfjob {args.verb} NAME "
                "(no job was submitted from this notebook yet; %tfjob list shows them all)"
            )
        if args.backend or args.namespace or args.context or args.kubeconfig:
            return TFJobHandle(self._client_for(args), self.last_job.name)
        return self.last_job

    # -- verbs --------------------------------------------------------------------
    def _submit(self, args, cell: str | None):
        body = cell if cell is not None and cell.strip() else None
        if body is not None and args.file:
            raise UsageError(f"give the TFJob either as the cell body or as a file ({args.file}), not both")
        if body is None and not args.file:
            raise UsageError("submit needs a TFJob: %tfjob submit FILE.yaml, or a %%tfjob submit cell holding the YAML")
        from ..client import verb_options
        from ..handle import TFJobHandle

        source = body if body is not None else Path(args.file).expanduser()
        client = self._client_for(args)
        sub = client.submit(source, **verb_options(client.submit, args))
        for notice in sub.notices:
            print(notice)
        for warning in sub.warnings:
            print_error(f"warning: {warning}")
        if sub.dry_run:
            import yaml

            print(f"dry run: TFJob {sub.name!r} is valid for the {client.backend_name} backend; nothing was created.")
            print(yaml.safe_dump(sub.manifest, sort_keys=False, default_flow_style=False).rstrip())
            return None
        print(f"tfjob {sub.name!r} created ({client.backend_name} backend, namespace {client.namespace})")
        job = TFJobHandle(client, sub.name, sub)
        self.last_job = job
        if args.watch:
            return self._show_monitor(job)
        return job

    def _list(self, args, cell):
        from ..job_display import JobTable

        client = self._client_for(args)
        snaps = client.list()
        if args.output == "table":
            return JobTable(snaps)
        manifests = [client.manifest(s.name) for s in snaps] if args.output in ("json", "yaml") else []
        from ..verbs import list_text

        print(list_text(snaps, args.output, manifests))
        return None

    def _get(self, args, cell):
        from ..verbs import get_text, object_text

        job = self._job(args)
        if args.output in ("json", "yaml"):
            print(object_text(job.client.manifest(job.name), args.output))
            return None
        snap = job.client.get(job.name)  # a missing job fails the cell now, not a repr later
        if args.output == "wide":
            print(get_text(snap, wide=True))
            return None
        return job

    def _watch(self, args, cell):
        job = self._job(args)
        job.client.get(job.name)
        return self._show_monitor(job)

    def _show_monitor(self, job: TFJobHandle):
        """The widget where a widget frontend is attached; status lines in terminal IPython."""
        if self.has_widget_frontend():
            return job.watch()
        self._print_watch(job)
        return None

    def has_widget_frontend(self) -> bool:
        """True inside a Jupyter kernel (JupyterLab, nbclient); False in terminal IPython."""
        return getattr(self.shell, "kernel", None) is not None

    def _print_watch(self, job: TFJobHandle) -> None:
        print_line = self._progress_display(rich=False)
        try:
            for snap in job.client.watch(job.name):
                print_line(snap)
        except KeyboardInterrupt:
            print_error(f"stopped watching; tfjob {job.name!r} keeps running")

    def _logs(self, args, cell):
        job = self._job(args)
        from IPython.display import display

        from ..logfold import Fold, fold_bundle, fold_stream

        lines = job.client.logs(job.name, args.replica, follow=args.follow, tail=args.tail)
        try:
            # TensorFlow's start-up lines fold into one marker here; `kubeflow-jupyter logs` prints them raw.
            for item in fold_stream(lines):
                if isinstance(item, Fold):
                    sys.stdout.flush()  # the marker lands after the lines printed before it
                    display(fold_bundle(item), raw=True)
                else:
                    print(item)
        except KeyboardInterrupt:
            print_error(f"stopped following the log; tfjob {job.name!r} keeps running")
        finally:
            close = getattr(lines, "close", None)
            if close:
                close()  # ends the backend's follow (closes its file/stream) right away
        return None

    def _wait(self, args, cell):
        job = self._job(args)
        show = self._progress_display()
        try:
            final = job.client.wait(job.name, timeout=args.timeout, on_update=show)
        except JobFailed as e:
            # Raised (shown as one message, no traceback): the cell fails, so "Run All" stops here.
            show(e.snapshot)
            failed = [r.id for r in e.snapshot.replicas if r.phase == "Failed"]
            hint = f"\nsee why: %tfjob logs {job.name} --replica {failed[0]}" if failed else ""
            raise JobFailed(e.snapshot, hint=hint) from None
        except KeyboardInterrupt:
            print_error(f"stopped waiting; tfjob {job.name!r} keeps running")
            return None
        show(final)
        return final

    def _progress_display(self, rich: bool | None = None) -> Callable[[JobSnapshot], None]:
        """A callback showing progress on each change of state or finished replicas:
        one updating progress bar in a kernel, a line per change in a terminal."""
        from .. import job_display

        rich = self.has_widget_frontend() if rich is None else rich
        last_key: tuple | None = None
        handle = None

        def show(snap: JobSnapshot) -> None:
            nonlocal last_key, handle
            key = job_display.progress_key(snap)
            if key == last_key:  # elapsed time alone changing is not news
                return
            last_key = key
            bundle = job_display.progress_bundle(snap)
            if not rich:
                print(bundle["text/plain"])
            elif handle is None:
                from IPython.display import display as show_bundle

                handle = show_bundle(bundle, raw=True, display_id=True)
            else:
                handle.update(bundle, raw=True)

        return show

    def _run(self, args, cell: str | None):
        if cell is None or not cell.strip():
            raise UsageError("%%tfjob run runs the cell's code: write it in a %%tfjob run cell")
        import os

        from ..client import verb_options
        from ..runcell import jobs

        client = self._client_for(args)
        outcome = client.run_cell(cell, **verb_options(client.run_cell, args), wait=False, root=os.getcwd())
        if not args.dry_run and outcome.submission is not None:
            for notice in outcome.submission.notices:  # e.g. that a pvc:// logdir is for a cluster
                print(notice)
        if args.dry_run:
            import yaml

            what = " and ".join(["TFJob", *(o.get("kind", "object") for o in outcome.objects)])
            print(f"dry run: {what} for the {client.backend_name} backend; nothing was created.")
            print(yaml.safe_dump_all([outcome.manifest, *outcome.objects], sort_keys=False).rstrip())
            return None
        job = outcome
        self.last_job = job
        if args.no_wait:
            print(f"tfjob {job.name!r} created ({client.backend_name} backend, namespace {client.namespace})")
            return job
        replica = job.submission.snapshot.default_replica if job.submission and job.submission.snapshot else None
        try:
            if replica:
                jobs.stream_output(client, job.name, [replica], print)
            return job.result()
        except KeyboardInterrupt:
            print_error(f"stopped waiting; tfjob {job.name!r} keeps running: %tfjob result {job.name}")
            return None

    def _result(self, args, cell):
        job = self._job(args)
        try:
            return job.result(timeout=args.timeout)
        except KeyboardInterrupt:
            print_error(f"stopped waiting; tfjob {job.name!r} keeps running")
            return None

    def _metrics(self, args, cell):
        job = self._job(args)
        return job.metrics(args.replica, tail=args.tail)

    def _tensorboard(self, args, cell):
        from ..metrics.tensorboard import TensorBoardUnavailable

        job = self._job(args)
        try:
            return job.tensorboard()
        except TensorBoardUnavailable as e:  # one line, and "Run All" goes on: nothing failed
            print_error(str(e))
            return None

    def _delete(self, args, cell):
        job = self._job(args)
        job.delete()
        print(f"tfjob {job.name!r} deleted")
        return None


# %tfjob? shows what getdoc() returns (IPython's oinspect asks for it before __doc__): the
# docstring and the verbs' help, as magic_arguments would show, built only when asked for.
TFJobMagics.tfjob.getdoc = lambda: f"{inspect.cleandoc(TFJobMagics.tfjob.__doc__ or '')}\n\n{help_text()}"
