"""The TFJob verbs, declared once: the CLI (``kubeflow-jupyter VERB``) and ``%tfjob VERB`` are
both built from this table, so their help, defaults, validators and messages are the same.

A :class:`Verb` names its aliases, arguments and options (each :class:`Arg` says which front
ends have it) and its help; :func:`build_parser` turns a table into an argparse tree for one
front end. An option a verb does not declare is refused by that verb's own parser. The global
options (``--backend``, ``--namespace``, ``--context``, ``--kubeconfig``) are accepted before
or after the verb, as kubectl accepts them. :func:`list_text`, :func:`get_text` and
:func:`object_text` are the ``-o`` outputs both front ends print.

Imports argparse and the backends' names (``BACKENDS``, the environment variables), not the
client; ``%tfjob`` imports this module on its first use, so ``%load_ext`` stays cheap.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from .backends import BACKENDS, DEFAULT_NAMESPACE, ENV_BACKEND, ENV_KUBE_CONTEXT, ENV_NAMESPACE
from .errors import CLI, NOTEBOOK, UsageError
from .tfjob.spec import STRICT, VALIDATION_MODES

if TYPE_CHECKING:
    from .tfjob.status import JobSnapshot

BOTH = (CLI, NOTEBOOK)


@dataclass(frozen=True)
class Arg:
    """One positional argument or option: ``flags`` and ``options`` are ``add_argument``'s."""

    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    front_ends: tuple[str, ...] = BOTH
    #: front ends where a positional argument may be left out (a notebook has a last job, a cell body)
    optional_in: tuple[str, ...] = ()
    #: the title of the argument group it is listed under in the help (``Verb.groups``)
    group: str = ""


def arg(
    *flags: str, front_ends: tuple[str, ...] = BOTH, optional_in: tuple[str, ...] = (), group: str = "", **options: Any
) -> Arg:
    return Arg(flags, options, front_ends, optional_in, group)


@dataclass(frozen=True)
class Verb:
    name: str
    help: str
    args: tuple[Arg, ...] = ()
    aliases: tuple[str, ...] = ()
    front_ends: tuple[str, ...] = BOTH
    description: str = ""  # the verb's own --help (default: ``help``)
    groups: tuple[tuple[str, str], ...] = ()  # (title, description) of option groups
    global_options: bool = True  # --backend, --namespace, --context, --kubeconfig


# -- validators: the same bounds as the client's checks ----------------------------------------------
def non_negative_int(text: str) -> int:
    from .client import MAX_TAIL

    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit()) or int(stripped) > MAX_TAIL:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_TAIL:,} (got {text!r:.40})")
    return int(stripped)


def positive_float(text: str) -> float:
    from .client import MAX_TIMEOUT

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds > 0, at most {MAX_TIMEOUT:,.0f} (366 days) (got {text!r:.40})"
        )
    return value


# -- the table -----------------------------------------------------------------------------------
GLOBAL_OPTIONS = (
    arg(
        "--backend",
        choices=BACKENDS,
        help=f"where jobs run (default: ${ENV_BACKEND}, else auto: kubernetes when a cluster is configured, "
        "local otherwise)",
    ),
    arg(
        "--namespace",
        "-n",
        help=f"the namespace (default: ${ENV_NAMESPACE}, else the backend's: on Kubernetes the service "
        f"account's or the context's, else {DEFAULT_NAMESPACE!r})",
    ),
    arg(
        "--context",
        help=f"kubernetes: the kubeconfig context to use (default: ${ENV_KUBE_CONTEXT}, else the current context)",
    ),
    arg(
        "--kubeconfig",
        metavar="FILE",
        help="kubernetes: the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)",
    ),
)

GLOBAL_TITLE = "global options (before or after the verb)"

JOB_NAME = arg(
    "name",
    metavar="NAME",
    optional_in=(NOTEBOOK,),
    help="the job's name (in a notebook, default: the job last submitted from it)",
)
#: ``--logdir`` of submit and run.
LOGDIR = arg(
    "--logdir",
    metavar="pvc://CLAIM/SUBPATH",
    help="kubernetes: mount this PersistentVolumeClaim (its SUBPATH) in every replica at /kfj/logdir, named by "
    "$TFJOB_LOGDIR, for tf.summary / Keras's TensorBoard callback (%%%%tfjob tensorboard shows it); locally "
    "every job has its own $TFJOB_LOGDIR",
)
#: kubectl's ``--validate``: what an unknown field in the spec does.
VALIDATE = arg(
    "--validate",
    choices=VALIDATION_MODES,
    default=STRICT,
    help="strict (default, as kubectl): refuse a field the TFJob schema does not know, naming it; "
    "warn: drop it with a warning; ignore: drop it silently",
)
LIST_OUTPUTS = ("table", "wide", "json", "yaml")
GET_OUTPUTS = ("wide", "json", "yaml")

VERBS: tuple[Verb, ...] = (
    Verb(
        "submit",
        "create a TFJob from a YAML file (kubeflow.org/v1, or the seed's v1alpha1)",
        (
            arg(
                "file",
                metavar="FILE",
                optional_in=(NOTEBOOK,),
                help="the TFJob YAML file (in a terminal, '-' reads standard input; in a notebook, the body of a "
                "%%%%tfjob submit cell may hold the YAML instead)",
            ),
            arg("--name", help="override metadata.name"),
            arg(
                "--command",
                help="run this in every replica instead of the image's entrypoint, e.g. \"python "
                'examples/tf_sample/tf_sample.py" (relative paths: from the working directory)',
            ),
            arg(
                "--dry-run",
                action="store_true",
                help="validate and print the kubeflow.org/v1 manifest that would be created; create nothing",
            ),
            arg(
                "--wait",
                action="store_true",
                front_ends=(CLI,),
                help="wait until the job finishes, showing its progress",
            ),
            arg(
                "--logs",
                action="store_true",
                front_ends=(CLI,),
                help="after waiting, print the chief/master's log (implies --wait)",
            ),
            arg(
                "--timeout",
                type=positive_float,
                metavar="S",
                front_ends=(CLI,),
                help="with --wait: give up waiting after S seconds",
            ),
            arg("--watch", action="store_true", front_ends=(NOTEBOOK,), help="show the live JobMonitor widget"),
            VALIDATE,
            LOGDIR,
        ),
    ),
    Verb(
        "list",
        "list the TFJobs of the namespace, newest first",
        (
            arg(
                "-o",
                "--output",
                choices=LIST_OUTPUTS,
                default="table",
                help="table (default); wide adds the namespace, replicas by type and the message; json/yaml print a "
                "List of the kubeflow.org/v1 objects",
            ),
        ),
    ),
    Verb(
        "get",
        "show one TFJob's state and replicas",
        (
            JOB_NAME,
            arg(
                "-o",
                "--output",
                choices=GET_OUTPUTS,
                help="wide: more replica columns; json/yaml: the whole kubeflow.org/v1 object",
            ),
        ),
        aliases=("status",),
    ),
    Verb(
        "watch",
        "show the live JobMonitor widget (status lines in terminal IPython)",
        (JOB_NAME,),
        front_ends=(NOTEBOOK,),
    ),
    Verb(
        "logs",
        "print a replica's log",
        (
            JOB_NAME,
            arg("--replica", help="replica id such as master-0 or worker-1 (default: the chief/master, else worker-0)"),
            arg(
                "--follow",
                "-f",
                action="store_true",
                help="keep printing until the replica ends (Ctrl-C stops following)",
            ),
            arg("--tail", type=non_negative_int, metavar="N", help="only the last N lines"),
        ),
    ),
    Verb(
        "metrics",
        "the training metrics so far (replica, step, one column per metric; a pandas DataFrame in a notebook): "
        "the replicas' 'step=N name=value' log lines (kubeflow_jupyter.report) and the scalars in $TFJOB_LOGDIR",
        (
            JOB_NAME,
            arg(
                "--replica",
                metavar="R",
                help="a replica id such as worker-1, or 'all' (default: the chief/master, else worker-0)",
            ),
            arg("--tail", type=non_negative_int, metavar="N", help="read only the last N lines of each log"),
            arg(
                "-o",
                "--output",
                choices=("table", "csv"),
                default="table",
                front_ends=(CLI,),
                help="table (default) or csv",
            ),
        ),
    ),
    Verb(
        "tensorboard",
        "a TensorBoard on the job's logdir, shown inline (started once per job, stopped with the job's delete "
        "and the kernel); on a cluster, Kubeflow's Tensorboard owned by the TFJob (needs --logdir pvc://...)",
        (JOB_NAME,),
        front_ends=(NOTEBOOK,),
    ),
    Verb(
        "wait",
        "wait until a TFJob finishes (fails if the job failed)",
        (
            JOB_NAME,
            arg("--timeout", type=positive_float, metavar="S", help="give up after S seconds (the job keeps running)"),
        ),
    ),
    Verb("delete", "delete a TFJob and stop all of its processes/pods", (JOB_NAME,)),
    Verb(
        "run",
        "run the cell's Python code on every replica of a new TFJob; the value of its last expression on the "
        "result replica (chief, else worker-0) is the cell's result",
        (
            arg("--name", help="the job's name (default: run-<5 random characters>)"),
            arg("--workers", type=non_negative_int, default=1, metavar="N", help="Worker replicas (default 1)"),
            arg("--ps", type=non_negative_int, default=0, metavar="N", help="PS (parameter server) replicas"),
            arg("--chief", action="store_true", help="add a Chief replica (then the result replica)"),
            arg("--evaluator", action="store_true", help="add an Evaluator replica"),
            arg(
                "--image",
                help="kubernetes: the replicas' image (default: tensorflow/tensorflow:<the installed TensorFlow "
                "version>); the local backend runs the kernel's interpreter",
            ),
            arg(
                "--packages",
                nargs="+",
                action="extend",
                default=[],
                metavar="P",
                help="kubernetes: pip-installed in each container before the code; local: must be installed already",
            ),
            arg(
                "--files",
                nargs="+",
                action="extend",
                default=[],
                metavar="PATH",
                help="files or directories beside the notebook shipped with the code (helper modules import)",
            ),
            arg("--env", nargs="+", action="extend", default=[], metavar="K=V", help="environment of every replica"),
            arg("--no-wait", action="store_true", help="return the job's handle at once (job.result() later)"),
            arg(
                "--dry-run",
                action="store_true",
                help="print what would be created (the TFJob, and the ConfigMap on Kubernetes); create nothing",
            ),
            LOGDIR,
        ),
        front_ends=(NOTEBOOK,),
    ),
    Verb(
        "result",
        "a run-job's value (waits until it finishes; fails with the remote error if the code raised)",
        (
            JOB_NAME,
            arg("--timeout", type=positive_float, metavar="S", help="give up waiting after S seconds"),
        ),
        front_ends=(NOTEBOOK,),
    ),
)


# -- building a front end's parser ------------------------------------------------------------------
class VerbParser(argparse.ArgumentParser):
    """Usage errors raise :class:`~kubeflow_jupyter.errors.UsageError` (one line, exit 2 in the
    CLI, a failed cell in a notebook). Each verb's parser is of this class too."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(" ".join(message.split()), prog=self.prog)


def _add(parser, a: Arg, front_end: str, **override: Any) -> None:
    options = {**a.options, **override}
    if not a.flags[0].startswith("-") and front_end in a.optional_in:
        options["nargs"] = "?"
    parser.add_argument(*a.flags, **options)


def build_parser(
    front_end: str,
    verbs: Sequence[Verb],
    *,
    prog: str,
    description: str,
    version: str | None = None,
    parser_class: type[argparse.ArgumentParser] = VerbParser,
) -> argparse.ArgumentParser:
    """``prog [GLOBAL OPTIONS] VERB [ARGS]`` for ``front_end``: ``args.verb`` is the verb's name
    (an alias resolves to it), the global options default to None."""
    parser = parser_class(prog=prog, description=description)
    if version:
        parser.add_argument("--version", action="version", version=f"{prog} {version}")
    shared = parser.add_argument_group(GLOBAL_TITLE)
    for a in GLOBAL_OPTIONS:
        _add(shared, a, front_end)
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True, parser_class=parser_class)
    for verb in verbs:
        if front_end not in verb.front_ends:
            continue
        p = sub.add_parser(
            verb.name, aliases=list(verb.aliases), help=verb.help, description=verb.description or verb.help
        )
        p.set_defaults(verb=verb.name)
        groups = {title: p.add_argument_group(title, text) for title, text in verb.groups}
        for a in verb.args:
            if front_end in a.front_ends:
                _add(groups.get(a.group, p), a, front_end)
        if verb.global_options:
            shared = p.add_argument_group(GLOBAL_TITLE)
            # SUPPRESS: given only before the verb, the value parsed there must not be reset to None.
            for a in GLOBAL_OPTIONS:
                _add(shared, a, front_end, default=argparse.SUPPRESS)
    return parser


def verb_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each verb's own parser (aliases left out), in the table's order."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    seen: dict[int, str] = {}
    for name, p in action.choices.items():
        seen.setdefault(id(p), name)
    return {name: action.choices[name] for name in seen.values()}


# -- -o outputs ---------------------------------------------------------------------------------
def object_text(obj: Any, output: str) -> str:
    """``-o json|yaml``: an object as kubectl prints it."""
    if output == "json":
        return json.dumps(obj, indent=2)
    import yaml

    return yaml.safe_dump(obj, sort_keys=False).rstrip("\n")


def _replicas_by_type(snap: JobSnapshot) -> str:
    counts: dict[str, int] = {}
    for r in snap.replicas:
        counts[r.type] = counts.get(r.type, 0) + 1
    return ",".join(f"{t}:{n}" for t, n in counts.items()) or "-"


def list_text(snaps: Sequence[JobSnapshot], output: str, manifests: Sequence[dict] = ()) -> str:
    """``list -o OUTPUT``: the summary table, the wide one, or kubectl's ``List`` of the objects
    ``get -o json|yaml`` prints (``manifests``, in the order of ``snaps``)."""
    from .job_display import SUMMARY_COLUMNS, summary_row, text_table

    if output in ("json", "yaml"):
        return object_text({"apiVersion": "v1", "kind": "List", "items": list(manifests)}, output)
    if output == "wide":
        # DESCRIPTION (what a run-job runs) only when some job has one: submitted jobs have none.
        described = any(s.description for s in snaps)
        columns = (*SUMMARY_COLUMNS, "NAMESPACE", "REPLICAS", "MESSAGE", *(("DESCRIPTION",) if described else ()))
        return text_table(
            columns,
            (
                (
                    *summary_row(s),
                    s.namespace,
                    _replicas_by_type(s),
                    s.message or "-",
                    *((s.description or "-",) if described else ()),
                )
                for s in snaps
            ),
        )
    return text_table(SUMMARY_COLUMNS, (summary_row(s) for s in snaps))


def get_text(snap: JobSnapshot, wide: bool = False) -> str:
    """``get [-o wide]``: the job's state and its replicas (more columns with ``wide``)."""
    from .job_display import clock, text_table

    lines = [
        f"Name:        {snap.name}",
        f"Namespace:   {snap.namespace}",
        f"Backend:     {snap.backend}",
        f"State:       {snap.state}" + (f" ({snap.message})" if snap.message else ""),
        f"Created:     {snap.created}",
        f"Started:     {snap.start_time or '-'}",
        f"Completed:   {snap.completion_time or '-'}",
    ]
    if snap.replicas:
        columns = ["REPLICA", "PHASE", "RESTARTS", "EXIT", "MESSAGE"]
        if wide:
            columns[1:1] = ["TYPE", "INDEX"]
            columns[-1:-1] = ["STARTED", "FINISHED", "POD"]
        rows = []
        for r in snap.replicas:
            row = [r.id, r.phase, str(r.restarts), "-" if r.exit_code is None else str(r.exit_code), r.message]
            if wide:
                row[1:1] = [r.type, str(r.index)]
                row[-1:-1] = [clock(r.started_at), clock(r.finished_at), r.pod_name or "-"]
            rows.append(row)
        lines.append(text_table(columns, rows))
    return "\n".join(lines)
