"""``kubeflow-jupyter``: the TFJob verbs for a terminal (submit, list, get, logs, wait, delete).

A front end only: every verb calls :class:`kubeflow_jupyter.client.TFJobClient`.
Exit status: 0 success, 1 the job failed / did not finish / the backend failed,
2 bad input (invalid spec, unknown job or replica, name taken, bad option),
130 interrupted. Errors are one short line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .backends import BACKENDS, DEFAULT_NAMESPACE, ENV_NAMESPACE
from .errors import (
    AlreadyExists, JobNotFound, KubeflowJupyterError, OptionError, ReplicaNotFound, SpecError, StoreNotWritable,
)
from .tfjob.load import read_stream
from .tfjob.status import FAILED, JobSnapshot, parse_iso

PROG = "kubeflow-jupyter"
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
BAD_INPUT_ERRORS = (SpecError, JobNotFound, ReplicaNotFound, AlreadyExists, OptionError, StoreNotWritable)
# Another area adds its own verbs (``serve``) through ``register(subparsers)`` in these modules.
PLUGIN_MODULES = ("kubeflow_jupyter.serving.cli",)


def _client(args: argparse.Namespace):
    from .client import TFJobClient

    return TFJobClient(args.backend, namespace=args.namespace, context=args.context, kubeconfig=args.kubeconfig)


def _err(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _age(timestamp: str | None) -> str:
    start = parse_iso(timestamp)
    if start is None:
        return "-"
    seconds = int((datetime.now(timezone.utc) - start).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _progress_line(snap: JobSnapshot) -> str:
    replicas = ", ".join(
        f"{r.id} {r.phase}" + (f" (restarts {r.restarts})" if r.restarts else "") for r in snap.replicas
    )
    return f"{snap.name}: {snap.state}" + (f" — {replicas}" if replicas else "")


def _wait(client, name: str, timeout: float | None) -> JobSnapshot:
    """Wait, printing one line to stderr each time the job's state or a replica's phase changes."""
    last: list[str] = []

    def show(snap: JobSnapshot) -> None:
        line = _progress_line(snap)
        if not last or line != last[0]:
            last[:] = [line]
            print(line, file=sys.stderr, flush=True)

    return client.wait(name, timeout=timeout, on_update=show, raise_on_failure=False)


def _print_logs(client, name: str, replica: str | None, *, follow: bool = False, tail: int | None = None) -> None:
    for line in client.logs(name, replica, follow=follow, tail=tail):
        print(line, flush=follow)


def _final(snap: JobSnapshot) -> int:
    if snap.state == FAILED:
        _err(f"TFJob {snap.name!r} failed: {snap.message}")
        return EXIT_FAILED
    print(f"tfjob {snap.name!r} {snap.state}")
    return EXIT_OK


# -- verbs ---------------------------------------------------------------------
def cmd_submit(args: argparse.Namespace) -> int:
    import yaml

    client = _client(args)
    # Never more than the manifest limit + 1 byte, whatever FILE is (see tfjob/load.py).
    source = read_stream(sys.stdin.buffer) if args.file == "-" else Path(args.file)
    submission = client.submit(source, name=args.name, command=args.command, dry_run=args.dry_run)
    for notice in submission.notices:
        print(f"notice: {notice}", file=sys.stderr)
    for warning in submission.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if submission.dry_run:
        print(yaml.safe_dump(submission.manifest, sort_keys=False), end="")
        print(f"(dry run: nothing created on the {client.backend_name} backend)", file=sys.stderr)
        return EXIT_OK
    print(f"tfjob {submission.name!r} created ({client.backend_name} backend, namespace {client.namespace!r})")
    if not (args.wait or args.logs):
        return EXIT_OK
    snap = _wait(client, submission.name, args.timeout)
    if args.logs:
        _print_logs(client, submission.name, None)
    return _final(snap)


def cmd_list(args: argparse.Namespace) -> int:
    client = _client(args)
    snaps = client.list()
    if not snaps:
        print(f"no TFJobs in namespace {client.namespace!r}", file=sys.stderr)
        return EXIT_OK
    rows = [["NAME", "STATE", "REPLICAS", "AGE", "BACKEND"]]
    for s in snaps:
        c = s.counts()
        rows.append([s.name, s.state, f"{c['active']} active, {c['succeeded']} succeeded, {c['failed']} failed",
                     _age(s.created), s.backend])
    print(_table(rows))
    return EXIT_OK


def cmd_get(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.output == "json":
        print(json.dumps(client.manifest(args.name), indent=2))
        return EXIT_OK
    if args.output == "yaml":
        import yaml

        print(yaml.safe_dump(client.manifest(args.name), sort_keys=False), end="")
        return EXIT_OK
    snap = client.get(args.name)
    print(f"Name:        {snap.name}\nNamespace:   {snap.namespace}\nBackend:     {snap.backend}")
    print(f"State:       {snap.state}" + (f" ({snap.message})" if snap.message else ""))
    print(f"Created:     {snap.created}\nStarted:     {snap.start_time or '-'}\nCompleted:   {snap.completion_time or '-'}")
    if snap.replicas:
        rows = [["REPLICA", "PHASE", "RESTARTS", "EXIT", "MESSAGE"]]
        rows += [[r.id, r.phase, str(r.restarts), "-" if r.exit_code is None else str(r.exit_code), r.message]
                 for r in snap.replicas]
        print(_table(rows))
    return EXIT_OK


def cmd_logs(args: argparse.Namespace) -> int:
    _print_logs(_client(args), args.name, args.replica, follow=args.follow, tail=args.tail)
    return EXIT_OK


def cmd_wait(args: argparse.Namespace) -> int:
    client = _client(args)
    return _final(_wait(client, args.name, args.timeout))


def cmd_delete(args: argparse.Namespace) -> int:
    _client(args).delete(args.name)
    print(f"tfjob {args.name!r} deleted")
    return EXIT_OK


# -- parser ----------------------------------------------------------------------
class Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (``kubeflow-jupyter: argument --tail: ...``), exit 2.

    Subcommand parsers (also the plugins') are of this class: argparse makes them with the
    parent's class."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = " ".join(message.split())
        self.exit(EXIT_BAD_INPUT, f"{PROG}: {message} (see `{self.prog} --help`)\n")


def _non_negative_int(text: str) -> int:
    from .client import MAX_TAIL

    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit()) or int(stripped) > MAX_TAIL:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_TAIL:,} (got {text!r:.40})")
    return int(stripped)


def _positive_float(text: str) -> float:
    from .client import MAX_TIMEOUT

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, at most {MAX_TIMEOUT:,.0f} (366 days) (got {text!r:.40})")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--backend", choices=BACKENDS, default=None,
                        help="where jobs run (default: $KUBEFLOW_JUPYTER_BACKEND, else auto: "
                             "kubernetes when a cluster is configured, local otherwise)")
    common.add_argument("--namespace", "-n", default=None,
                        help=f"the namespace (default: ${ENV_NAMESPACE}, else the backend's: on Kubernetes the "
                             f"service account's or the context's, else {DEFAULT_NAMESPACE!r})")
    common.add_argument("--context", default=None,
                        help="kubernetes: the kubeconfig context to use (default: "
                             "$KUBEFLOW_JUPYTER_KUBE_CONTEXT, else the current context)")
    common.add_argument("--kubeconfig", default=None, metavar="FILE",
                        help="kubernetes: the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")

    parser = Parser(prog=PROG, description="Run TFJobs locally or on Kubernetes.")
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", required=True)

    def verb(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    p = verb("submit", cmd_submit, "create a TFJob from a YAML file (kubeflow.org/v1, or the seed's v1alpha1)")
    p.add_argument("file", metavar="FILE", help="the TFJob YAML ('-' reads standard input)")
    p.add_argument("--name", help="override metadata.name")
    p.add_argument("--command", help='run this in every replica instead of the image\'s entrypoint, '
                                      'e.g. "python examples/tf_sample/tf_sample.py"')
    p.add_argument("--wait", action="store_true", help="wait until the job finishes, showing its progress")
    p.add_argument("--logs", action="store_true", help="after waiting, print the chief/master's log (implies --wait)")
    p.add_argument("--timeout", type=_positive_float, help="with --wait: give up waiting after S seconds")
    p.add_argument("--dry-run", action="store_true",
                   help="validate and print the kubeflow.org/v1 manifest that would be created; create nothing")

    verb("list", cmd_list, "list the TFJobs of the namespace, newest first")

    p = verb("get", cmd_get, "show one TFJob's state and replicas")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-o", "--output", choices=("yaml", "json"), help="print the whole kubeflow.org/v1 object")

    p = verb("logs", cmd_logs, "print a replica's log")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--replica", help="replica id such as master-0 or worker-1 (default: the chief/master, else worker-0)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the replica ends")
    p.add_argument("--tail", type=_non_negative_int, metavar="N", help="only the last N lines")

    p = verb("wait", cmd_wait, "wait until a TFJob finishes (exit 1 if it failed)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--timeout", type=_positive_float, metavar="S", help="give up after S seconds")

    p = verb("delete", cmd_delete, "delete a TFJob and stop all of its processes/pods")
    p.add_argument("name", metavar="NAME")

    for module_name in PLUGIN_MODULES:
        if importlib.util.find_spec(module_name) is not None:
            register = getattr(importlib.import_module(module_name), "register", None)
            if register is not None:
                register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BAD_INPUT_ERRORS as e:
        _err(str(e))
        return EXIT_BAD_INPUT
    except KubeflowJupyterError as e:
        _err(str(e))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _err("interrupted (a submitted job keeps running: `kubeflow-jupyter delete NAME` stops it)")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `... | head`
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
