"""``%tfjob`` / ``%%tfjob``: submit, list, inspect, watch, read and delete TFJobs from a notebook.

Argument parsing and display only: every verb calls :class:`~kubeflow_jupyter.client.TFJobClient`.
Errors the user can act on (:class:`~kubeflow_jupyter.errors.KubeflowJupyterError`, bad options)
are printed to stderr as one message, never as a traceback, and the magic returns ``None``.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..errors import JobFailed, KubeflowJupyterError

# The client, the domain (and YAML with it) and the display are imported on the first
# %tfjob, not by %load_ext: loading the extension stays a few milliseconds.
if TYPE_CHECKING:
    from ..client import TFJobClient
    from ..handle import TFJobHandle
    from ..tfjob.status import JobSnapshot

VERBS = ("submit", "list", "get", "status", "watch", "logs", "wait", "delete")

# Options that only make sense for some verbs (dest name → verbs); the rest apply to all.
VERB_OPTIONS = {
    "name": ("submit",),
    "command": ("submit",),
    "dry_run": ("submit",),
    "watch": ("submit",),
    "replica": ("logs",),
    "follow": ("logs",),
    "tail": ("logs",),
    "timeout": ("wait",),
}

SNAPSHOT_MODULE = "kubeflow_jupyter.tfjob.status"

# (backend, namespace, context, kubeconfig) → client
ClientKey = tuple[str, "str | None", "str | None", "str | None"]
ClientFactory = Callable[[str, "str | None", "str | None", "str | None"], "TFJobClient"]


def _new_client(backend: str, namespace: str | None, context: str | None, kubeconfig: str | None) -> TFJobClient:
    from ..client import TFJobClient

    return TFJobClient(backend, namespace=namespace, context=context, kubeconfig=kubeconfig)


def print_error(message: str) -> None:
    print(message, file=sys.stderr)


def parse_args(magic, line: str):
    """Split like a POSIX shell, then parse with the magic's argparse parser.

    (IPython's ``parse_argstring`` splits in non-POSIX mode, which keeps the quotes of
    ``--command "python train.py"`` inside the value.)
    """
    try:
        argv = shlex.split(line)
    except ValueError as e:  # e.g. "No closing quotation"
        raise UsageError(f"cannot split the options: {e}") from None
    return magic.parser.parse_args(argv)


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

    # -- the magic ----------------------------------------------------------
    @magic_arguments()
    @argument("verb", choices=VERBS, help="what to do: " + ", ".join(VERBS))
    @argument(
        "target",
        nargs="?",
        help="submit: a TFJob YAML file (or put the YAML in a %%%%tfjob submit cell). "
        "Other verbs: the job name (default: the job last submitted from this notebook).",
    )
    @argument("--name", help="submit: override metadata.name")
    @argument(
        "--command",
        help='submit: the command every replica runs, e.g. "python train.py" '
        "(replaces the tensorflow container's command/args; needed by the local backend "
        "for images it cannot run). Relative paths resolve against the kernel's working directory.",
    )
    @argument("--backend", help="auto (default), local or kubernetes ($KUBEFLOW_JUPYTER_BACKEND)")
    @argument("--namespace", help="the namespace (default: $KUBEFLOW_JUPYTER_NAMESPACE, else the backend's)")
    @argument("--context", help="kubernetes: the kubeconfig context (default: $KUBEFLOW_JUPYTER_KUBE_CONTEXT, "
              "else the current one)")
    @argument("--kubeconfig", help="kubernetes: the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    @argument("--dry-run", action="store_true", help="submit: validate and show the manifest, create nothing")
    @argument("--watch", action="store_true", help="submit: show the live JobMonitor widget")
    @argument("--replica", help='logs: which replica, e.g. "worker-0" (default: the chief/master, else worker-0)')
    @argument("--follow", "-f", action="store_true", help="logs: keep streaming until the replica ends (Ctrl-C stops following)")
    @argument("--tail", type=int, help="logs: only the last N lines")
    @argument("--timeout", type=float, help="wait: give up after this many seconds (the job keeps running)")
    @line_cell_magic
    def tfjob(self, line: str, cell: str | None = None):
        """Run and follow TFJobs (distributed TensorFlow training) from the notebook.

        Examples::

            %tfjob submit examples/tfjob-legacy.yaml --command "python examples/tf_sample/tf_sample.py"
            job = %tfjob submit train.yaml --name run-{n}     # {var} expands; job.status, job.logs(), job.wait()
            %%tfjob submit --watch --command "python train.py"
            <TFJob YAML: kubeflow.org/v1 TFJob, or the legacy tensorflow.org/v1alpha1 TfJob>

            %tfjob list
            %tfjob get example-job             # also: %tfjob status example-job
            %tfjob watch example-job           # live widget: replicas, progress, conditions, logs, delete
            %tfjob wait example-job --timeout 600
            %tfjob logs example-job --replica worker-0 --follow
            %tfjob delete example-job

        Without a job name, get/status/watch/logs/wait/delete act on the job last
        submitted from this notebook. Errors are printed as one message; a job that
        fails while ``%tfjob wait`` waits raises JobFailed (shown as one message, no
        traceback) so that "Run All" stops there, as ``job.wait()`` does.
        """
        try:
            args = parse_args(self.tfjob, line)
            self._check_options(args, cell)
        except UsageError as e:
            print_error(f"{e} (see %tfjob? for the options)")
            return None
        try:
            return getattr(self, f"_{'get' if args.verb == 'status' else args.verb}")(args, cell)
        except JobFailed:
            raise  # from %tfjob wait: the cell fails, shown as one message (no traceback)
        except KubeflowJupyterError as e:
            print_error(str(e))
            return None

    @staticmethod
    def _check_options(args, cell: str | None) -> None:
        for dest, verbs in VERB_OPTIONS.items():
            value = getattr(args, dest)
            if value not in (None, False) and args.verb not in verbs:
                option = "--" + dest.replace("_", "-")
                raise UsageError(f"{option} only applies to: {', '.join(verbs)} (not {args.verb})")
        if cell is not None and args.verb != "submit":
            raise UsageError(f"%%tfjob cells take a YAML body for submit only; use %tfjob {args.verb} on one line")
        if args.tail is not None and args.tail < 0:
            raise UsageError("--tail must be a number of lines ≥ 0")

    # -- clients and job names --------------------------------------------------
    def client(self, backend: str | None = None, namespace: str | None = None, context: str | None = None,
               kubeconfig: str | None = None) -> TFJobClient:
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

        if args.target:
            return TFJobHandle(self._client_for(args), args.target)
        if self.last_job is None:
            raise KubeflowJupyterError(
                f"%tfjob {args.verb} needs a job name: %tfjob {args.verb} NAME "
                "(no job was submitted from this notebook yet; %tfjob list shows them all)"
            )
        if args.backend or args.namespace or args.context or args.kubeconfig:
            return TFJobHandle(self._client_for(args), self.last_job.name)
        return self.last_job

    # -- verbs --------------------------------------------------------------------
    def _submit(self, args, cell: str | None):
        body = cell if cell is not None and cell.strip() else None
        if body is not None and args.target:
            raise KubeflowJupyterError(
                f"give the TFJob either as the cell body or as a file ({args.target}), not both"
            )
        if body is None and not args.target:
            raise KubeflowJupyterError(
                "submit needs a TFJob: %tfjob submit FILE.yaml, or a %%tfjob submit cell holding the YAML"
            )
        from ..handle import TFJobHandle

        source = body if body is not None else Path(args.target).expanduser()
        client = self._client_for(args)
        sub = client.submit(source, name=args.name, command=args.command, dry_run=args.dry_run)
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

        return JobTable(self._client_for(args).list())

    def _get(self, args, cell):
        job = self._job(args)
        job.client.get(job.name)  # a missing job is an error message now, not a failing repr later
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
        lines = job.client.logs(job.name, args.replica, follow=args.follow, tail=args.tail)
        try:
            for line in lines:
                print(line)
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

    def _delete(self, args, cell):
        job = self._job(args)
        job.delete()
        print(f"tfjob {job.name!r} deleted")
        return None
