"""How each replica of a TFJob becomes a local process: argv, working directory, environment.

Checked in full before anything is created, so a job that cannot run here fails with
one clear error naming the field, and nothing is left on disk or running.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ...errors import FieldProblem, SpecError
from ...tfjob.model import TFJob, replica_id

# argv[0] spellings that mean "the Python interpreter": they run as sys.executable, the
# interpreter of the process that runs the job (the project's venv, with its TensorFlow),
# not whatever `python` happens to be first on PATH.
# One machine runs every replica: beyond this many processes a job belongs on a cluster.
MAX_LOCAL_REPLICAS = 64
PYTHON_NAMES = ("python", "python3", f"python{sys.version_info.major}.{sys.version_info.minor}")


@dataclass(frozen=True)
class ReplicaLaunch:
    replica_type: str
    index: int
    argv: list[str]
    cwd: str
    env: dict[str, str]  # the container's env: added to the supervisor's environment
    image: str

    @property
    def id(self) -> str:
        return replica_id(self.replica_type, self.index)


def _container_path(rtype: str, field: str) -> str:
    return f"spec.tfReplicaSpecs.{rtype}.template.spec.containers[tensorflow].{field}"


def _resolve_argv(argv: list[str]) -> list[str]:
    return [sys.executable, *argv[1:]] if argv[0] in PYTHON_NAMES else list(argv)


# Linux refuses to exec a process with one argument or "NAME=value" longer than this
# (MAX_ARG_STRLEN, 32 pages, the terminating NUL included): "Argument list too long".
MAX_EXEC_STRING = 32 * 4096


def _over_exec_limit(argv: list[str], env: dict[str, str]) -> str | None:
    """The field (command / env) holding a string the kernel would refuse to exec, if any."""
    if any(len(arg.encode(errors="surrogateescape")) >= MAX_EXEC_STRING for arg in argv):
        return "command"
    if any(len(f"{k}={v}".encode(errors="surrogateescape")) >= MAX_EXEC_STRING for k, v in env.items()):
        return "env"
    return None


def _find_executable(program: str, cwd: str, env: dict[str, str]) -> bool:
    if os.sep in program:
        path = Path(cwd, program)
        return path.is_file() and os.access(path, os.X_OK)
    return shutil.which(program, path=env.get("PATH", os.environ.get("PATH"))) is not None


def plan_job(job: TFJob, workdir: str) -> list[ReplicaLaunch]:
    """Every replica's launch, or SpecError listing every replica that cannot run here."""
    problems: list[FieldProblem] = []
    launches: list[ReplicaLaunch] = []
    if job.total_replicas > MAX_LOCAL_REPLICAS:
        raise SpecError(FieldProblem("spec.tfReplicaSpecs", (
            f"{job.total_replicas} replicas in total: the local backend runs at most {MAX_LOCAL_REPLICAS} "
            "processes on this machine; lower the replicas or use a cluster (--backend kubernetes)")))
    for rtype, spec in job.replica_specs.items():
        if spec.replicas == 0:
            continue
        container = spec.container
        argv = spec.command
        if not argv:
            problems.append(FieldProblem(
                _container_path(rtype, "command"),
                "the local backend cannot run an image's entrypoint; "
                'pass --command "python path/to/script.py" (or set command in the spec)',
            ))
            continue
        cwd = str(Path(workdir, container.get("workingDir") or ".").resolve())
        if not os.path.isdir(cwd):
            problems.append(FieldProblem(
                _container_path(rtype, "workingDir"),
                f"{cwd!r} is not a directory on this machine (the local backend runs the replica "
                "there); remove workingDir or point it at a local directory",
            ))
            continue
        argv = _resolve_argv(argv)
        env = spec.env
        too_long = _over_exec_limit(argv, env)
        if too_long:
            problems.append(FieldProblem(_container_path(rtype, too_long), (
                f"longer than {MAX_EXEC_STRING - 1} bytes, the most Linux passes to a process in one argument "
                "or environment variable; put large values in a file and pass its path")))
            continue
        if not _find_executable(argv[0], cwd, {**os.environ, **env}):
            problems.append(FieldProblem(
                _container_path(rtype, "command"),
                f"{argv[0]!r} is not an executable on this machine's PATH (nor relative to {cwd}); "
                'pass --command with a program that exists here, e.g. "python path/to/script.py"',
            ))
            continue
        script = argv[1] if argv[0] == sys.executable and len(argv) > 1 else ""
        if script.endswith(".py") and not Path(cwd, script).is_file():
            problems.append(FieldProblem(
                _container_path(rtype, "command"),
                f"the Python script {script!r} does not exist in {cwd}; "
                "check the path (relative paths start at the job's working directory: where you submit from)",
            ))
            continue
        launches += [
            ReplicaLaunch(rtype, i, argv, cwd, env, str(container.get("image", "")))
            for i in range(spec.replicas)
        ]
    if problems:
        raise SpecError(problems)
    return launches
