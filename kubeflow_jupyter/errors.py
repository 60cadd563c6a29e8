"""Errors every front end shows as one clear message (no traceback).

``str(error)`` is the user-facing text: it names what is wrong and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass


class KubeflowJupyterError(Exception):
    """Base class: a problem the user can act on. Front ends print ``str(e)`` only."""

    def _render_traceback_(self) -> list[str]:
        """IPython/ipykernel show this instead of a traceback: the message is the whole story.

        The cell still fails (so "Run All" stops), but the user reads one clear message."""
        return f"{type(self).__name__}: {self}".splitlines()


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


class JobNotFound(KubeflowJupyterError, LookupError):
    def __init__(self, name: str, where: str = ""):
        self.name = name
        suffix = f" {where}" if where else ""
        super().__init__(f"no TFJob named {name!r}{suffix} (see `kubeflow-jupyter list`)")


class AlreadyExists(KubeflowJupyterError):
    def __init__(self, name: str, where: str = ""):
        self.name = name
        suffix = f" {where}" if where else ""
        super().__init__(
            f"a TFJob named {name!r} already exists{suffix}: delete it first or choose another --name"
        )


class ReplicaNotFound(KubeflowJupyterError, LookupError):
    pass


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
