"""How a TFJob runs here: every replica's argv, working directory, environment (with the
operator's TF_CONFIG) and port, plus the job-level rules the supervisor applies.

Checked in full before anything is created, so a job that cannot run here fails with
one clear error naming the field, and nothing is left on disk or running. The plan
crosses to the supervisor as ``launch.json`` (:meth:`JobPlan.to_dict`); the supervisor
runs it as written and never parses the spec again.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ...errors import FieldProblem, SpecError
from ...tfjob.model import ReplicaSpec, RunPolicy, TFJob, replica_id
from ...tfjob.tfconfig import tf_config_json
from .processes import free_ports

# One machine runs every replica: beyond this many processes a job belongs on a cluster.
MAX_LOCAL_REPLICAS = 64
# argv[0] spellings that mean "the Python interpreter": they run as sys.executable, the
# interpreter of the process that runs the job (the project's venv, with its TensorFlow),
# not whatever `python` happens to be first on PATH.
PYTHON_NAMES = ("python", "python3", f"python{sys.version_info.major}.{sys.version_info.minor}")


@dataclass(frozen=True)
class ReplicaLaunch:
    replica_type: str
    index: int
    argv: list[str]
    cwd: str
    env: dict[str, str]  # the container's env and TF_CONFIG: added to the supervisor's environment
    image: str
    port: int  # on localhost: the replica's address in every TF_CONFIG of the job

    @property
    def id(self) -> str:
        return replica_id(self.replica_type, self.index)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "type": self.replica_type,
            "index": self.index,
            "argv": list(self.argv),
            "cwd": self.cwd,
            "env": dict(self.env),
            "image": self.image,
            "port": self.port,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ReplicaLaunch:
        return cls(
            data["type"],
            int(data["index"]),
            list(data["argv"]),
            data["cwd"],
            dict(data["env"]),
            data["image"],
            int(data["port"]),
        )


@dataclass(frozen=True)
class ReplicaRule:
    """What the operator's rules need of one replica type: how many, and what an exit means."""

    replicas: int
    restart_policy: str


@dataclass(frozen=True)
class JobPlan:
    """The job as the supervisor runs it: launches for every replica, and the rules' inputs."""

    name: str
    namespace: str
    replica_rules: dict[str, ReplicaRule]  # every type of the spec, in its order (replicas: 0 included)
    run_policy: RunPolicy
    success_policy: str
    launches: list[ReplicaLaunch]

    def job(self) -> TFJob:
        """The job as :mod:`tfjob.rules` sees it: counts, policies, no templates (what runs is
        in ``launches``)."""
        return TFJob(
            name=self.name,
            namespace=self.namespace,
            replica_specs={
                t: ReplicaSpec(t, r.replicas, r.restart_policy, template={}) for t, r in self.replica_rules.items()
            },
            run_policy=self.run_policy,
            success_policy=self.success_policy,
        )

    def to_dict(self) -> dict:
        rp = self.run_policy
        return {
            "name": self.name,
            "namespace": self.namespace,
            "replicaSpecs": {
                t: {"replicas": r.replicas, "restartPolicy": r.restart_policy} for t, r in self.replica_rules.items()
            },
            "runPolicy": {
                "cleanPodPolicy": rp.clean_pod_policy,
                "backoffLimit": rp.backoff_limit,
                "activeDeadlineSeconds": rp.active_deadline_seconds,
                "ttlSecondsAfterFinished": rp.ttl_seconds_after_finished,
                "suspend": rp.suspend,
            },
            "successPolicy": self.success_policy,
            "replicas": [launch.to_dict() for launch in self.launches],
        }

    @classmethod
    def from_dict(cls, data: dict) -> JobPlan:
        rp = data["runPolicy"]
        return cls(
            name=data["name"],
            namespace=data["namespace"],
            replica_rules={
                t: ReplicaRule(int(r["replicas"]), r["restartPolicy"]) for t, r in data["replicaSpecs"].items()
            },
            run_policy=RunPolicy(
                clean_pod_policy=rp["cleanPodPolicy"],
                backoff_limit=rp["backoffLimit"],
                active_deadline_seconds=rp["activeDeadlineSeconds"],
                ttl_seconds_after_finished=rp["ttlSecondsAfterFinished"],
                suspend=bool(rp["suspend"]),
            ),
            success_policy=data["successPolicy"],
            launches=[ReplicaLaunch.from_dict(launch) for launch in data["replicas"]],
        )


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


def _replica_problem(rtype: str, spec: ReplicaSpec, workdir: str) -> FieldProblem | tuple[list[str], str]:
    """Why replicas of this type cannot run here, or their (argv, cwd)."""
    container = spec.container
    argv = spec.command
    if not argv:
        return FieldProblem(
            _container_path(rtype, "command"),
            "the local backend cannot run an image's entrypoint; "
            'pass --command "python path/to/script.py" (or set command in the spec)',
        )
    cwd = str(Path(workdir, container.get("workingDir") or ".").resolve())
    if not os.path.isdir(cwd):
        return FieldProblem(
            _container_path(rtype, "workingDir"),
            f"{cwd!r} is not a directory on this machine (the local backend runs the replica "
            "there); remove workingDir or point it at a local directory",
        )
    argv = _resolve_argv(argv)
    env = spec.env
    too_long = _over_exec_limit(argv, env)
    if too_long:
        return FieldProblem(
            _container_path(rtype, too_long),
            (
                f"longer than {MAX_EXEC_STRING - 1} bytes, the most Linux passes to a process in one argument "
                "or environment variable; put large values in a file and pass its path"
            ),
        )
    if not _find_executable(argv[0], cwd, {**os.environ, **env}):
        return FieldProblem(
            _container_path(rtype, "command"),
            f"{argv[0]!r} is not an executable on this machine's PATH (nor relative to {cwd}); "
            'pass --command with a program that exists here, e.g. "python path/to/script.py"',
        )
    script = argv[1] if argv[0] == sys.executable and len(argv) > 1 else ""
    if script.endswith(".py") and not Path(cwd, script).is_file():
        return FieldProblem(
            _container_path(rtype, "command"),
            f"the Python script {script!r} does not exist in {cwd}; "
            "check the path (relative paths start at the job's working directory, that folder: the Jupyter "
            "root from the sidebar, the notebook's folder from %tfjob, the current directory from the CLI)",
        )
    return argv, cwd


def plan_job(job: TFJob, namespace: str, workdir: str) -> JobPlan:
    """The job's plan, or SpecError listing every replica type that cannot run here.

    Each replica gets a free localhost port now, so every TF_CONFIG is written into the plan."""
    if job.total_replicas > MAX_LOCAL_REPLICAS:
        raise SpecError(
            FieldProblem(
                "spec.tfReplicaSpecs",
                (
                    f"{job.total_replicas} replicas in total: the local backend runs at most {MAX_LOCAL_REPLICAS} "
                    "processes on this machine; lower the replicas or use a cluster (--backend kubernetes)"
                ),
            )
        )
    problems: list[FieldProblem] = []
    runnable: dict[str, tuple[list[str], str]] = {}
    for rtype, spec in job.replica_specs.items():
        if spec.replicas == 0:
            continue
        found = _replica_problem(rtype, spec, workdir)
        if isinstance(found, FieldProblem):
            problems.append(found)
        else:
            runnable[rtype] = found
    if problems:
        raise SpecError(problems)

    replicas = job.replicas()
    ports = dict(zip(replicas, free_ports(len(replicas)), strict=True))

    def host(replica_type: str, index: int) -> str:
        return f"localhost:{ports[(replica_type, index)]}"

    launches = []
    for rtype, index in replicas:
        spec = job.replica_specs[rtype]
        argv, cwd = runnable[rtype]
        env = dict(spec.env)
        tf_config = tf_config_json(job, rtype, index, host)
        if tf_config is not None:
            env["TF_CONFIG"] = tf_config
        launches.append(
            ReplicaLaunch(rtype, index, argv, cwd, env, str(spec.container.get("image", "")), ports[(rtype, index)])
        )
    return JobPlan(
        name=job.name,
        namespace=namespace,
        replica_rules={t: ReplicaRule(s.replicas, s.restart_policy) for t, s in job.replica_specs.items()},
        run_policy=job.run_policy,
        success_policy=job.success_policy,
        launches=launches,
    )
