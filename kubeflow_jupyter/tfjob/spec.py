"""Parse, convert, default and validate TFJob manifests.

One entry point, :func:`parse_tfjob`: it either returns a :class:`ParseResult` or
raises :class:`SpecError` listing *every* problem, each with its field path and
the fix. The rules are the API server's (the CRD's structural schema) plus the
training-operator 1.9 webhook's and defaulter's.
"""

from __future__ import annotations

import copy
import re
import shlex

from ..errors import FieldProblem, SpecError
from . import legacy
from .load import MAX_BYTES, check_manifest_size, check_structure, load_yaml
from .model import (
    API_VERSION,
    CHIEF_TYPES,
    CLEAN_POD_POLICIES,
    DEFAULT_CLEAN_POD_POLICY,
    DEFAULT_CONTAINER,
    DEFAULT_PORT,
    DEFAULT_PORT_NAME,
    DEFAULT_RESTART_POLICY,
    KIND,
    REPLICA_TYPES,
    RESTART_POLICIES,
    SUCCESS_POLICIES,
    ParseResult,
    ReplicaSpec,
    RunPolicy,
    TFJob,
)
from .schema import check as check_schema
from .schema import crd_schema

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CANONICAL = {t.lower(): t for t in REPLICA_TYPES}
#: Written by the API server or the local store, not by the user: not measured against the
#: manifest limit (so a stored manifest parses again), and small (the local store adds ~100 bytes).
SERVER_METADATA = frozenset(
    {
        "uid",
        "creationTimestamp",
        "resourceVersion",
        "generation",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)


#: kubectl's ``--validate`` values: what an unknown field does.
STRICT, WARN, IGNORE = "strict", "warn", "ignore"
VALIDATION_MODES = (STRICT, WARN, IGNORE)


def parse_tfjob(
    source: str | bytes | dict,
    *,
    name: str | None = None,
    command: list[str] | None = None,
    validate: str = STRICT,
) -> ParseResult:
    """YAML text (str/bytes) or a dict → ParseResult, or raise SpecError listing every problem.

    ``name`` overrides metadata.name (metadata.namespace is left as written: which namespace a
    job goes to is the client's decision, :meth:`TFJobClient.prepare`);
    ``command`` (argv list) replaces command+args of every replica's ``tensorflow`` container.
    Accepts ``kubeflow.org/v1`` TFJob and the legacy ``tensorflow.org/v1alpha1`` TfJob
    (converted, with a notice).

    ``validate`` is kubectl's field validation: ``strict`` (default, as kubectl since
    server-side field validation) refuses a field the TFJob schema does not know, with a
    "did you mean"; ``warn`` drops it with a warning; ``ignore`` drops it silently, as the
    API server prunes unknown fields. (The legacy format is converted leniently: its unknown
    fields are always warnings.)
    """
    if validate not in VALIDATION_MODES:
        raise SpecError(
            FieldProblem("--validate", f"must be one of {', '.join(VALIDATION_MODES)} (got {_short(validate)})")
        )
    if isinstance(source, dict):
        # The same budgets as YAML text: bounded nodes and depth, then the size as JSON.
        check_structure(source)
        check_manifest_size(_measured(source))
        data: object = copy.deepcopy(source)
    else:
        data = load_yaml(source)
    if not isinstance(data, dict):
        raise SpecError(
            f"expected a TFJob manifest (a YAML mapping with apiVersion, kind, metadata, spec), "
            f"got {type(data).__name__}"
        )

    notices: list[str] = []
    warnings: list[str] = []
    problems: list[FieldProblem] = []

    if legacy.is_legacy(data):
        data, notices, legacy_problems, legacy_warnings = legacy.convert(data, command)
        warnings += legacy_warnings
        if legacy_problems:
            raise SpecError(legacy_problems)
    else:
        _check_kind(data, problems)

    _apply_overrides(data, name=name, command=command, problems=problems)
    _normalise_replica_types(data, problems)
    _apply_defaults(data)

    if "status" in data:
        del data["status"]
        warnings.append("status: ignored (the operator writes the status)")
    unknown: list[tuple[str, str]] = []
    check_schema(data, crd_schema(), "", problems, unknown)
    if validate == WARN:
        warnings += [f"{path}: unknown field{hint}, ignored (the API server drops it)" for path, hint in unknown]

    _check_semantics(data, problems)
    if validate == STRICT and unknown:
        problems += [
            FieldProblem(path, f"unknown field{hint}: fix it, or submit with --validate=warn to drop it")
            for path, hint in unknown
        ]
    elif problems:
        # A misspelt field is often the cause of a "required" error: show both.
        problems += [FieldProblem(path, f"unknown field{hint}") for path, hint in unknown]
    if problems:
        raise SpecError(sorted(problems, key=lambda p: p.path))
    # What would be stored: the converted, defaulted manifest with --name/--command applied.
    check_manifest_size(_measured(data), "the TFJob" + (" (with --command)" if command is not None else ""))
    return ParseResult(job=_build(data), notices=notices, warnings=warnings)


def _measured(data: dict) -> dict:
    """What counts against the manifest limit: all but ``status`` and SERVER_METADATA (a shallow view)."""
    view = {key: value for key, value in data.items() if key != "status"}
    metadata = view.get("metadata")
    if isinstance(metadata, dict):
        view["metadata"] = {key: value for key, value in metadata.items() if key not in SERVER_METADATA}
    return view


def split_command(command: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    """``--command`` as an argv list: the one rule for every front end (CLI, REST, magics).

    A string is split like a POSIX shell (``"python -c 'print(1)'"``); unbalanced quotes,
    NUL characters and a command line over the manifest limit are a SpecError naming
    ``--command``. A list is taken as the argv (checked by :func:`parse_tfjob`)."""
    if command is None:
        return None
    if isinstance(command, (list, tuple)):
        return list(command)
    if not isinstance(command, str):
        raise SpecError(FieldProblem("--command", f"must be a command line (text), got {type(command).__name__}"))
    if "\0" in command:
        raise SpecError(FieldProblem("--command", "must not contain NUL characters"))
    if len(command) > MAX_BYTES:
        raise SpecError(
            FieldProblem("--command", f"is longer than {MAX_BYTES // 1024} KiB: put the program in a file and run that")
        )
    try:
        return shlex.split(command)
    except ValueError as e:  # "No closing quotation", "No escaped character"
        raise SpecError(
            FieldProblem(
                "--command",
                f"cannot split {_short(command)} like a shell: {e}: balance the "
                "quotes, e.g. --command \"python -c 'print(1)'\"",
            )
        ) from None


def _short(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (error messages echo user input)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]


# -- steps ------------------------------------------------------------------------


def _check_kind(data: dict, problems: list[FieldProblem]) -> None:
    api, kind = data.get("apiVersion"), data.get("kind")
    if api != API_VERSION:
        hint = "" if api is None else f" (got {api!r})"
        problems.append(FieldProblem("apiVersion", f"must be {API_VERSION}{hint}"))
    if kind != KIND:
        hint = "" if kind is None else f" (got {kind!r})"
        problems.append(FieldProblem("kind", f"must be {KIND}{hint}"))


def _apply_overrides(data: dict, *, name, command, problems) -> None:
    metadata = data.setdefault("metadata", {})
    if metadata is None:
        metadata = data["metadata"] = {}
    if not isinstance(metadata, dict):
        return  # the schema check reports it
    if name:
        metadata["name"] = name
    if command is not None:
        if not command or not all(isinstance(a, str) and a and "\0" not in a for a in command):
            problems.append(
                FieldProblem("--command", 'must be a non-empty command line, e.g. --command "python train.py"')
            )
            return
        for container in _tensorflow_containers(data):
            container["command"] = list(command)
            container.pop("args", None)


def _dig(node, *keys):
    """``node[k1][k2]…``, or None as soon as a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _tensorflow_containers(data: dict):
    specs = _dig(data, "spec", "tfReplicaSpecs")
    if not isinstance(specs, dict):
        return
    for spec in specs.values():
        containers = _dig(spec, "template", "spec", "containers")
        if isinstance(containers, list):
            for c in containers:
                if isinstance(c, dict) and c.get("name") == DEFAULT_CONTAINER:
                    yield c


def _normalise_replica_types(data: dict, problems: list[FieldProblem]) -> None:
    """``worker`` → ``Worker``, ``ps`` → ``PS`` (the operator's case-insensitive keys)."""
    spec = data.get("spec")
    if spec is None:
        problems.append(FieldProblem("spec", "required: a mapping with tfReplicaSpecs"))
        return
    if not isinstance(spec, dict):
        return
    specs = spec.get("tfReplicaSpecs")
    if specs is None:
        problems.append(
            FieldProblem("spec.tfReplicaSpecs", "required: a mapping like {Worker: {replicas: 2, template: ...}}")
        )
        return
    if not isinstance(specs, dict):
        return
    normalised: dict = {}
    for key, value in specs.items():
        canonical = _CANONICAL.get(str(key).lower())
        if canonical is None:
            problems.append(
                FieldProblem(
                    f"spec.tfReplicaSpecs.{key}", f"unknown replica type: use one of {', '.join(REPLICA_TYPES)}"
                )
            )
            continue
        if canonical in normalised:
            problems.append(
                FieldProblem(
                    f"spec.tfReplicaSpecs.{key}", f"{canonical} is given twice (keys are case-insensitive): keep one"
                )
            )
            continue
        normalised[canonical] = value
    spec["tfReplicaSpecs"] = {t: normalised[t] for t in REPLICA_TYPES if t in normalised}


def _apply_defaults(data: dict) -> None:
    """The operator's defaulter: replicas 1, restartPolicy Never, cleanPodPolicy None, tfjob-port 2222."""
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return
    run_policy = spec.setdefault("runPolicy", {})
    if isinstance(run_policy, dict):
        run_policy.setdefault("cleanPodPolicy", DEFAULT_CLEAN_POD_POLICY)
    specs = spec.get("tfReplicaSpecs")
    if not isinstance(specs, dict):
        return
    for rspec in specs.values():
        if not isinstance(rspec, dict):
            continue
        if rspec.get("replicas") is None:
            rspec["replicas"] = 1
        if not rspec.get("restartPolicy"):
            rspec["restartPolicy"] = DEFAULT_RESTART_POLICY
    for container in _tensorflow_containers(data):
        ports = container.get("ports")
        if ports is None:
            ports = container["ports"] = []
        if isinstance(ports, list) and not any(
            isinstance(p, dict) and p.get("name") == DEFAULT_PORT_NAME for p in ports
        ):
            ports.append({"name": DEFAULT_PORT_NAME, "containerPort": DEFAULT_PORT})


def _check_semantics(data: dict, problems: list[FieldProblem]) -> None:
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        name = metadata.get("name")
        if not name:
            hint = " (generateName is not supported here)" if metadata.get("generateName") else ""
            problems.append(FieldProblem("metadata.name", f"required: give the job a name, or use --name{hint}"))
        elif isinstance(name, str) and not (_DNS1035.match(name) and len(name) <= 63):
            problems.append(
                FieldProblem(
                    "metadata.name",
                    f"{_short(name)} is not a DNS-1035 label: use lowercase letters, digits "
                    "and '-', starting with a letter, ending with a letter or digit, at most 63 characters",
                )
            )
        ns = metadata.get("namespace")
        if isinstance(ns, str) and ns and not (_DNS1123.match(ns) and len(ns) <= 63):
            problems.append(
                FieldProblem("metadata.namespace", f"{_short(ns)} is not a valid namespace (a DNS-1123 label)")
            )

    spec = data.get("spec")
    if not isinstance(spec, dict):
        return
    _check_run_policy(spec.get("runPolicy"), problems)
    policy = spec.get("successPolicy")
    if isinstance(policy, str) and policy not in SUCCESS_POLICIES:
        problems.append(FieldProblem("spec.successPolicy", f'must be "" (default) or AllWorkers (got {policy!r})'))

    specs = spec.get("tfReplicaSpecs")
    if not isinstance(specs, dict):
        return
    if not specs:
        problems.append(FieldProblem("spec.tfReplicaSpecs", "needs at least one replica type, e.g. Worker"))
        return
    if sum(1 for t in specs if t in CHIEF_TYPES) > 1:
        problems.append(
            FieldProblem("spec.tfReplicaSpecs", "must not have more than 1 Chief or Master role: keep one of them")
        )
    total = 0
    for rtype, rspec in specs.items():
        path = f"spec.tfReplicaSpecs.{rtype}"
        if not isinstance(rspec, dict):
            if rspec is None:
                problems.append(FieldProblem(path, "must be a mapping with replicas, restartPolicy and template"))
            continue
        replicas = rspec.get("replicas")
        if isinstance(replicas, int) and not isinstance(replicas, bool):
            if replicas < 0:
                problems.append(FieldProblem(f"{path}.replicas", f"must be >= 0 (got {replicas})"))
            else:
                total += replicas
        restart = rspec.get("restartPolicy")
        if isinstance(restart, str) and restart not in RESTART_POLICIES:
            problems.append(
                FieldProblem(f"{path}.restartPolicy", f"must be one of {', '.join(RESTART_POLICIES)} (got {restart!r})")
            )
        _check_template(rspec.get("template"), f"{path}.template", problems)
    if total == 0 and not any(p.path.endswith(".replicas") for p in problems):
        problems.append(
            FieldProblem("spec.tfReplicaSpecs", "every replica type has replicas: 0: the job would run nothing")
        )


def _check_run_policy(run_policy, problems: list[FieldProblem]) -> None:
    if not isinstance(run_policy, dict):
        return
    clean = run_policy.get("cleanPodPolicy")
    if isinstance(clean, str) and clean not in CLEAN_POD_POLICIES:
        problems.append(
            FieldProblem(
                "spec.runPolicy.cleanPodPolicy", f"must be one of {', '.join(CLEAN_POD_POLICIES)} (got {clean!r})"
            )
        )
    for key, minimum in (("backoffLimit", 0), ("activeDeadlineSeconds", 1), ("ttlSecondsAfterFinished", 0)):
        value = run_policy.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value < minimum:
            problems.append(FieldProblem(f"spec.runPolicy.{key}", f"must be >= {minimum} (got {value})"))


def _check_template(template, path: str, problems: list[FieldProblem]) -> None:
    if template is None:
        problems.append(FieldProblem(path, "required: a pod template with spec.containers"))
        return
    if not isinstance(template, dict):
        return
    pod_spec = template.get("spec")
    containers = _dig(template, "spec", "containers")
    cpath = f"{path}.spec.containers"
    if not containers:
        if pod_spec is None or isinstance(pod_spec, dict):
            problems.append(
                FieldProblem(cpath, f"must be specified: a list with a container named {DEFAULT_CONTAINER}")
            )
        return
    if not isinstance(containers, list):
        return
    found = False
    for i, c in enumerate(containers):
        if not isinstance(c, dict):
            continue
        if not c.get("image"):
            problems.append(FieldProblem(f"{cpath}[{i}].image", "required: the container image to run"))
        if c.get("name") == DEFAULT_CONTAINER:
            found = True
            for p in c.get("ports") or []:
                if isinstance(p, dict) and p.get("name") == DEFAULT_PORT_NAME:
                    port = p.get("containerPort")
                    if isinstance(port, int) and not isinstance(port, bool) and not 1 <= port <= 65535:
                        problems.append(
                            FieldProblem(f"{cpath}[{i}].ports", f"{DEFAULT_PORT_NAME} must be 1-65535 (got {port})")
                        )
    if not found:
        problems.append(
            FieldProblem(
                cpath,
                f"must have at least one container with name {DEFAULT_CONTAINER} "
                "(the operator injects TF_CONFIG and the port into that container)",
            )
        )


def _build(data: dict) -> TFJob:
    spec = data["spec"]
    rp = spec.get("runPolicy") or {}
    replica_specs = {
        rtype: ReplicaSpec(
            type=rtype, replicas=r["replicas"], restart_policy=r["restartPolicy"], template=r["template"]
        )
        for rtype, r in spec["tfReplicaSpecs"].items()
    }
    return TFJob(
        name=data["metadata"]["name"],
        namespace=data["metadata"].get("namespace"),
        replica_specs=replica_specs,
        run_policy=RunPolicy(
            clean_pod_policy=rp.get("cleanPodPolicy") or DEFAULT_CLEAN_POD_POLICY,
            backoff_limit=rp.get("backoffLimit"),
            active_deadline_seconds=rp.get("activeDeadlineSeconds"),
            ttl_seconds_after_finished=rp.get("ttlSecondsAfterFinished"),
            suspend=bool(rp.get("suspend", False)),
        ),
        success_policy=spec.get("successPolicy") or "",
        manifest=data,
    )
