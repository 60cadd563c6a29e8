"""``kubeflow-jupyter``: the TFJob verbs for a terminal (submit, list, get, logs, wait, delete, serve).

A front end only: the verbs, their options and help are declared in :mod:`kubeflow_jupyter.verbs`
(shared with ``%tfjob``); every verb calls :class:`kubeflow_jupyter.client.TFJobClient`.
Exit status (:data:`kubeflow_jupyter.errors.ERROR_CODES`): 0 success, 1 the job failed / did
not finish / the backend failed, 2 bad input (invalid spec, unknown job or replica, name taken,
bad option), 130 interrupted. Errors are one short line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .errors import CLI, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, KubeflowJupyterError, exit_code
from .serving.cli import SERVE
from .serving.cli import run as cmd_serve
from .tfjob.load import read_stream
from .tfjob.status import FAILED, JobSnapshot
from .verbs import VERBS, get_text, list_text, object_text
from .verbs import build_parser as build_verb_parser

PROG = "kubeflow-jupyter"
#: the CLI's verbs: the TFJob verbs it has, and the model server's
CLI_VERBS = (*VERBS, SERVE)


def _client(args: argparse.Namespace):
    from .client import TFJobClient

    return TFJobClient(args.backend, namespace=args.namespace, context=args.context, kubeconfig=args.kubeconfig)


def _err(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


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

    from .client import verb_options

    client = _client(args)
    # Never more than the manifest limit + 1 byte, whatever FILE is (see tfjob/load.py).
    source = read_stream(sys.stdin.buffer) if args.file == "-" else Path(args.file)
    submission = client.submit(source, **verb_options(client.submit, args))
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
    manifests = [client.manifest(s.name) for s in snaps] if args.output in ("json", "yaml") else []
    if not snaps and args.output in ("table", "wide"):
        print(f"no TFJobs in namespace {client.namespace!r}", file=sys.stderr)
        return EXIT_OK
    print(list_text(snaps, args.output, manifests))
    return EXIT_OK


def cmd_get(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.output in ("json", "yaml"):
        print(object_text(client.manifest(args.name), args.output))
    else:
        print(get_text(client.get(args.name), wide=args.output == "wide"))
    return EXIT_OK


def cmd_logs(args: argparse.Namespace) -> int:
    _print_logs(_client(args), args.name, args.replica, follow=args.follow, tail=args.tail)
    return EXIT_OK


def cmd_wait(args: argparse.Namespace) -> int:
    client = _client(args)
    return _final(_wait(client, args.name, args.timeout))


def cmd_metrics(args: argparse.Namespace) -> int:
    frame = _client(args).metrics(args.name, args.replica, tail=args.tail)
    if frame.empty:
        print(
            f"no metrics in the logs of TFJob {args.name!r} yet (see `kubeflow-jupyter metrics --help`)",
            file=sys.stderr,
        )
        return EXIT_OK
    if args.output == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    else:
        print(frame.to_string(index=False))
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    _client(args).delete(args.name)
    print(f"tfjob {args.name!r} deleted")
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "submit": cmd_submit,
    "list": cmd_list,
    "get": cmd_get,
    "logs": cmd_logs,
    "wait": cmd_wait,
    "metrics": cmd_metrics,
    "delete": cmd_delete,
    "serve": cmd_serve,
}


def build_parser() -> argparse.ArgumentParser:
    """``kubeflow-jupyter [--version] [GLOBAL OPTIONS] COMMAND ...`` from the verb table.
    Usage errors raise :class:`~kubeflow_jupyter.errors.UsageError`."""
    return build_verb_parser(
        CLI,
        CLI_VERBS,
        prog=PROG,
        version=__version__,
        description="Run TFJobs locally or on Kubernetes, and serve models.",
    )


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.verb](args)
    except KubeflowJupyterError as e:
        _err(e.message_for(CLI))
        return exit_code(e)
    except KeyboardInterrupt:
        _err("interrupted (a submitted job keeps running: `kubeflow-jupyter delete NAME` stops it)")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `... | head`
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
