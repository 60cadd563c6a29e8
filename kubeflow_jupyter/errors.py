"""Errors every front end shows as one clear message (no traceback).

``str(error)`` is the user-facing text: it names what is wrong and what to do.
``message_for(front_end)`` words the hint for the front end showing it (``%tfjob list``
in a notebook, ``kubeflow-jupyter list`` in a terminal). ``ERROR_CODES`` at the end is
the one table of what each kind of error means as a CLI exit status and an HTTP status.

Only the subclasses are raised: the base class says nothing a front end can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The front ends a message may be worded for.
CLI, NOTEBOOK = "cli", "notebook"


class KubeflowJupyterError(Exception):
    """Base class: a problem the user can act on. Front ends print ``message_for(...)`` only."""

    def message_for(self, front_end: str) -> str:
        """The message as ``front_end`` shows it (the same as ``str`` unless a hint differs)."""
        return str(self)

    def _render_traceback_(self) -> list[str]:
        """IPython/ipykernel show this instead of a traceback: the message is the whole story.

        The cell still fails (so "Run All" stops), but the user reads one clear message."""
        return f"{type(self).__name__}: {self.message_for(NOTEBOOK)}".splitlines()


@dataclass(frozen=True)
class FieldProblem:
    """One problem in a TFJob spec: the field path and what to do about it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(KubeflowJupyterError, ValueError):
    """The TFJob spec is invalid. Carries *all* problems found, each with its field path."""

    def __init__(self, problems: list[FieldProblem] | FieldProblem | str):
        if isinstance(problems, str):
            problems = [FieldProblem("", problems)]
        elif isinstance(problems, FieldProblem):
            problems = [problems]
        self.problems: list[FieldProblem] = list(problems)
        super().__init__(self._format())

    def _format(self) -> str:
        if len(self.problems) == 1:
            return f"invalid TFJob: {self.problems[0]}"
        lines = [f"invalid TFJob ({len(self.problems)} problems):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


#: where each front end lists the jobs that do exist; ``str(JobNotFound)`` carries the CLI's (the Python API's too)
JOB_LIST_HINTS = {CLI: "see `kubeflow-jupyter list`", NOTEBOOK: "see `%tfjob list`"}


class JobNotFound(KubeflowJupyterError, LookupError):
    def __init__(self, name: str, where: str = ""):
        self.name = name
        self.reason = f"no TFJob named {name!r}" + (f" {where}" if where else "")
        super().__init__(self.message_for(CLI))

    def message_for(self, front_end: str) -> str:
        hint = JOB_LIST_HINTS.get(front_end)
        return f"{self.reason} ({hint})" if hint else self.reason


class AlreadyExists(KubeflowJupyterError):
    def __init__(self, name: str, where: str = ""):
        self.name = name
        suffix = f" {where}" if where else ""
        super().__init__(f"a TFJob named {name!r} already exists{suffix}: delete it first or choose another --name")


class ReplicaNotFound(KubeflowJupyterError, LookupError):
    """No replica of that id (or, on a cluster, no pod for it yet)."""


class ReplicaNotStarted(KubeflowJupyterError):
    """The replica exists but has not started (e.g. its image is being pulled): it has no log yet."""


class JobFailed(KubeflowJupyterError):
    """Raised by ``wait`` when the job ends Failed. ``snapshot`` is the final status."""

    def __init__(self, snapshot, hint: str = ""):
        self.snapshot = snapshot
        cond = snapshot.condition("Failed")
        why = f": {cond.reason}: {cond.message}" if cond else ""
        super().__init__(f"TFJob {snapshot.name!r} failed{why}{hint}")


class WaitTimeout(KubeflowJupyterError, TimeoutError):
    def __init__(self, name: str, timeout: float, state: str):
        super().__init__(
            f"TFJob {name!r} did not finish within {timeout:g}s (still {state}); "
            "it keeps running: wait again or delete it"
        )


class BackendError(KubeflowJupyterError):
    """The backend (local supervisor, Kubernetes API) could not do what was asked."""


class StoreNotWritable(KubeflowJupyterError):
    """The local job store cannot be written (read-only, no permission, disk full): the user fixes
    the directory or points ``$KUBEFLOW_JUPYTER_HOME`` elsewhere."""


class OptionError(KubeflowJupyterError, ValueError):
    """An option that does not apply here (e.g. ``--context`` with the local backend)."""


class UnknownBackend(OptionError):
    """``--backend`` or ``$KUBEFLOW_JUPYTER_BACKEND`` names no backend."""


class UsageError(OptionError):
    """A command line that does not parse: an unknown verb or option, a missing argument, a value
    out of range. ``prog`` (e.g. ``kubeflow-jupyter logs``, ``%tfjob logs``) names the help to read."""

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(message)
        self.prog = prog

    def message_for(self, front_end: str) -> str:
        if not self.prog:
            return str(self)
        if self.prog.startswith("%") and " " not in self.prog:
            return f"{self} (see {self.prog}? for the verbs and options)"
        return f"{self} (see `{self.prog} --help`)"


class MissingExtra(KubeflowJupyterError):
    """A feature needs an optional part of the install (an extra) that is not installed.

    One line that names the command: ``pip install 'kubeflow-jupyter[tensorflow]'``."""

    def __init__(self, *, feature: str, needs: str, extra: str, command: str, alternative: str = ""):
        self.feature, self.needs, self.extra, self.command = feature, needs, extra, command
        instead = f", {alternative}" if alternative else ""
        super().__init__(f"{feature} needs {needs}, which is not installed: {command}{instead}")


# -- what each kind of error means to a caller --------------------------------------
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

#: (error class, CLI exit status, HTTP status). An error takes the row of the nearest class
#: in its MRO: ``UsageError`` → ``OptionError``'s row; a class of another area (serving's
#: errors) → the base row. Bad input is the user's to fix (2 / 4xx); the rest is not (1).
ERROR_CODES: tuple[tuple[type[KubeflowJupyterError], int, int], ...] = (
    (KubeflowJupyterError, EXIT_FAILED, 400),
    (SpecError, EXIT_BAD_INPUT, 400),
    (OptionError, EXIT_BAD_INPUT, 400),
    (JobNotFound, EXIT_BAD_INPUT, 404),
    (ReplicaNotFound, EXIT_BAD_INPUT, 404),
    (AlreadyExists, EXIT_BAD_INPUT, 409),
    (StoreNotWritable, EXIT_BAD_INPUT, 403),
    (ReplicaNotStarted, EXIT_FAILED, 409),
    (JobFailed, EXIT_FAILED, 409),
    (WaitTimeout, EXIT_FAILED, 504),
    (BackendError, EXIT_FAILED, 502),
    # The user's to fix (install the extra), so 2; over HTTP the request was fine but this server
    # cannot do it as installed: 501 Not Implemented, not a 4xx that would blame the request.
    (MissingExtra, EXIT_BAD_INPUT, 501),
)
EXIT_CODES: dict[type[KubeflowJupyterError], int] = {cls: exit_ for cls, exit_, _ in ERROR_CODES}
HTTP_STATUS: dict[type[KubeflowJupyterError], int] = {cls: http for cls, _, http in ERROR_CODES}


def _nearest(table: dict[type[KubeflowJupyterError], int], error: KubeflowJupyterError) -> int:
    return next(table[cls] for cls in type(error).__mro__ if cls in table)


def exit_code(error: KubeflowJupyterError) -> int:
    """The CLI's exit status for ``error``."""
    return _nearest(EXIT_CODES, error)


def http_status(error: KubeflowJupyterError) -> int:
    """The REST API's status for ``error``."""
    return _nearest(HTTP_STATUS, error)
