"""Convert the seed's ``tensorflow.org/v1alpha1`` TfJob to a ``kubeflow.org/v1`` TFJob.

v1alpha1 (Kubeflow 0.1, the seed's ``example.yaml``) had a *list* of replica specs
``{replicas, tfReplicaType: MASTER|WORKER|PS, tfPort, template}``; the pod's
``restartPolicy`` sat in the template; a PS without a template ran a stock gRPC
parameter server. v1 has a map ``tfReplicaSpecs`` keyed ``Master``/``Worker``/``PS``
with ``restartPolicy`` on the replica spec.
"""

from __future__ import annotations

import copy
import shlex

from ..errors import FieldProblem
from .model import ANNOTATION_LOGDIR, API_VERSION, DEFAULT_CONTAINER, DEFAULT_PORT, DEFAULT_PORT_NAME, KIND

LEGACY_API_VERSION = "tensorflow.org/v1alpha1"
LEGACY_KIND = "TfJob"
LEGACY_TYPES = {"MASTER": "Master", "WORKER": "Worker", "PS": "PS"}

#: Image for the stock parameter server of a PS that had no template (v1alpha1 used its own
#: tf_sample-era image; any TensorFlow 2 image runs this program).
PS_IMAGE = "tensorflow/tensorflow:2.21.0"

#: The v1alpha1 "plain gRPC parameter server": a tf.distribute.Server from TF_CONFIG that serves forever.
PS_PROGRAM = (
    "import json, os; import tensorflow as tf; "
    "c = json.loads(os.environ['TF_CONFIG']); t = c['task']; "
    "tf.distribute.Server(tf.train.ClusterSpec(c['cluster']), job_name=t['type'], "
    "task_index=t['index'], protocol='grpc').join()"
)

_KNOWN_SPEC_FIELDS = {"replicaSpecs", "terminationPolicy", "tensorBoard", "tensorboard", "runtimeId"}
_KNOWN_REPLICA_FIELDS = {"replicas", "tfReplicaType", "tfPort", "template", "isDefaultPS"}


def is_legacy(data: dict) -> bool:
    return data.get("apiVersion") == LEGACY_API_VERSION or data.get("kind") == LEGACY_KIND


def plain_ps_template() -> dict:
    return {
        "spec": {
            "containers": [{"name": DEFAULT_CONTAINER, "image": PS_IMAGE, "command": ["python", "-c", PS_PROGRAM]}]
        }
    }


def convert(data: dict, command: list[str] | None = None) -> tuple[dict, list[str], list[FieldProblem], list[str]]:
    """Returns ``(v1_manifest, notices, problems, warnings)``; problems name v1alpha1 field paths.

    ``command`` is the ``--command`` that will replace every replica's command: the notices
    then say that it runs on the PS replicas too, not the stock parameter server."""
    problems: list[FieldProblem] = []
    warnings: list[str] = []
    plain_ps = False

    if data.get("apiVersion") != LEGACY_API_VERSION:
        problems.append(
            FieldProblem(
                "apiVersion",
                f"a TfJob must have apiVersion {LEGACY_API_VERSION} "
                f"(got {data.get('apiVersion')!r}); or write it as {API_VERSION} TFJob",
            )
        )
    spec = data.get("spec")
    if not isinstance(spec, dict):
        problems.append(FieldProblem("spec", "required: a mapping with replicaSpecs"))
        return {}, [], problems, warnings
    for key in spec:
        if key not in _KNOWN_SPEC_FIELDS:
            warnings.append(f"spec.{key}: unknown v1alpha1 field, ignored")
    tensorboard_key = "tensorboard" if spec.get("tensorboard") else "tensorBoard"
    logdir, tensorboard_warning = tensorboard_logdir(spec.get(tensorboard_key), f"spec.{tensorboard_key}")
    if tensorboard_warning:
        warnings.append(tensorboard_warning)
    term = spec.get("terminationPolicy")
    if isinstance(term, dict):
        chief = term.get("chief") or {}
        if isinstance(chief, dict) and (chief.get("replicaName", "MASTER"), chief.get("replicaIndex", 0)) != (
            "MASTER",
            0,
        ):
            warnings.append(
                "spec.terminationPolicy: only the default (chief MASTER 0) exists in kubeflow.org/v1; ignored"
            )

    replica_list = spec.get("replicaSpecs")
    if not isinstance(replica_list, list) or not replica_list:
        problems.append(FieldProblem("spec.replicaSpecs", "required: a list of {replicas, tfReplicaType, template}"))
        return {}, [], problems, warnings

    tf_specs: dict[str, dict] = {}
    for i, item in enumerate(replica_list):
        path = f"spec.replicaSpecs[{i}]"
        if not isinstance(item, dict):
            problems.append(FieldProblem(path, "must be a mapping {replicas, tfReplicaType, template}"))
            continue
        for key in item:
            if key not in _KNOWN_REPLICA_FIELDS:
                warnings.append(f"{path}.{key}: unknown v1alpha1 field, ignored")
        raw_type = item.get("tfReplicaType")
        rtype = LEGACY_TYPES.get(str(raw_type).upper()) if isinstance(raw_type, str) else None
        if rtype is None:
            problems.append(
                FieldProblem(f"{path}.tfReplicaType", f"must be one of MASTER, WORKER, PS (got {raw_type!r})")
            )
            continue
        if rtype in tf_specs:
            problems.append(
                FieldProblem(
                    f"{path}.tfReplicaType", f"{raw_type} is listed twice: merge them into one entry with replicas: N"
                )
            )
            continue
        replicas = item.get("replicas")
        if rtype == "Master" and replicas is not None and (isinstance(replicas, bool) or replicas != 1):
            # The v1alpha1 operator's own rule (ValidateTfJobSpec), word for word.
            problems.append(
                FieldProblem(
                    f"{path}.replicas",
                    f"The MASTER must have Replicas = 1 (got {replicas!r}): "
                    "run the other replicas as WORKER (or leave replicas out)",
                )
            )
        template = item.get("template")
        if template is None:
            if rtype != "PS":
                problems.append(
                    FieldProblem(f"{path}.template", f"required for {raw_type} replicas (only a PS may omit it)")
                )
                continue
            template = plain_ps_template()
            plain_ps = True
        elif not isinstance(template, dict):
            problems.append(FieldProblem(f"{path}.template", "must be a pod template mapping"))
            continue
        template = copy.deepcopy(template)
        restart = "Never"
        pod_spec = template.get("spec")
        if isinstance(pod_spec, dict) and "restartPolicy" in pod_spec:
            restart = pod_spec.pop("restartPolicy")
        v1: dict = {"replicas": item.get("replicas", 1), "restartPolicy": restart, "template": template}
        port = item.get("tfPort", DEFAULT_PORT)
        _set_port(template, port)
        tf_specs[rtype] = v1

    metadata = data.get("metadata")
    manifest = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": copy.deepcopy(metadata) if isinstance(metadata, dict) else metadata,
        "spec": {"tfReplicaSpecs": tf_specs},
    }
    name = metadata.get("name") if isinstance(metadata, dict) else None
    meta: object = manifest["metadata"]
    if logdir and isinstance(meta, dict):
        annotations = meta.get("annotations")
        meta["annotations"] = {**(annotations if isinstance(annotations, dict) else {}), ANNOTATION_LOGDIR: logdir}
    notice = (
        f"converted the seed's {LEGACY_API_VERSION} TfJob {name!r} to a {API_VERSION} TFJob: "
        "replicaSpecs list → tfReplicaSpecs map ("
        + ", ".join(f"{k}→{v}" for k, v in LEGACY_TYPES.items() if v in tf_specs)
        + "), the pods' restartPolicy → each replica's restartPolicy"
    )
    notices = [notice]
    if plain_ps and command is not None:
        notices.append(
            f"the PS replicas had no template: like every replica they run --command "
            f"({shlex.join(command)}), not v1alpha1's plain gRPC parameter server"
        )
    elif plain_ps:
        notices.append(
            f"the PS replicas had no template: they run a plain TensorFlow gRPC parameter server "
            f"(image {PS_IMAGE}), as v1alpha1 did"
        )
    if logdir:
        notices.append(
            f"spec.{tensorboard_key}.logDir → annotation {ANNOTATION_LOGDIR}: {logdir} (on a cluster every replica "
            f"mounts it and finds it in $TFJOB_LOGDIR; %tfjob tensorboard {name or 'NAME'} shows it)"
        )
    return manifest, notices, problems, warnings


def tensorboard_logdir(tensorboard: object, path: str) -> tuple[str | None, str | None]:
    """v1alpha1's ``spec.tensorboard`` (``logDir`` inside one of its ``volumeMounts``) as
    ``(pvc://CLAIM/SUBPATH or None, a warning or None)``: a logDir on a PersistentVolumeClaim
    volume becomes the job's logdir; anything else cannot be read by a TensorBoard of the cluster."""
    if not tensorboard:
        return None, None
    what = (
        "give the job a logdir on a PersistentVolumeClaim instead: --logdir pvc://CLAIM/SUBPATH, or the "
        f"annotation {ANNOTATION_LOGDIR}: pvc://CLAIM/SUBPATH (locally every job has its own $TFJOB_LOGDIR)"
    )
    if not isinstance(tensorboard, dict) or not isinstance(tensorboard.get("logDir"), str):
        return None, f"{path}: no logDir, ignored; {what}"
    logdir = tensorboard["logDir"]
    if logdir.startswith("pvc://"):
        return logdir, None
    claims = {
        v.get("name"): (v.get("persistentVolumeClaim") or {}).get("claimName")
        for v in tensorboard.get("volumes") or []
        if isinstance(v, dict) and isinstance(v.get("persistentVolumeClaim"), dict)
    }
    for mount in tensorboard.get("volumeMounts") or []:
        if not isinstance(mount, dict) or not claims.get(mount.get("name")):
            continue
        root = str(mount.get("mountPath") or "").rstrip("/")
        if root and (logdir == root or logdir.startswith(root + "/")):
            rest = [p for p in (str(mount.get("subPath") or ""), logdir[len(root) :]) if p.strip("/")]
            return f"pvc://{claims[mount.get('name')]}/" + "/".join(p.strip("/") for p in rest), None
    return None, f"{path}.logDir {logdir!r:.80} is not on a PersistentVolumeClaim volume, ignored; {what}"


def _set_port(template: dict, port) -> None:
    """v1alpha1's ``tfPort`` becomes the ``tfjob-port`` of the tensorflow container."""
    pod_spec = template.get("spec")
    if not isinstance(pod_spec, dict) or not isinstance(pod_spec.get("containers"), list):
        return
    for c in pod_spec["containers"]:
        if isinstance(c, dict) and c.get("name") == DEFAULT_CONTAINER:
            ports = c.setdefault("ports", [])
            if isinstance(ports, list) and not any(
                isinstance(p, dict) and p.get("name") == DEFAULT_PORT_NAME for p in ports
            ):
                ports.append({"name": DEFAULT_PORT_NAME, "containerPort": port})
