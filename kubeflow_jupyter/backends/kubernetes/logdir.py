"""A TFJob's logdir on a cluster: the PersistentVolumeClaim its ``kubeflow-jupyter.org/logdir``
annotation names (``pvc://CLAIM/SUBPATH``), mounted in every replica with ``$TFJOB_LOGDIR``
pointing at it, so that ``tf.summary`` writers and a Kubeflow ``Tensorboard`` share the files."""

from __future__ import annotations

from ...metrics.tensorboard import parse_pvc_logdir
from ...tfjob import model


def logdir_of(manifest: dict) -> str | None:
    """The ``pvc://`` logdir a TFJob object was created with, if any."""
    annotations = (manifest.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(model.ANNOTATION_LOGDIR) if isinstance(annotations, dict) else None
    return str(value) if value else None


def mount_logdir(manifest: dict) -> dict:
    """``manifest`` (changed in place and returned) with the logdir's claim as volume
    ``kfj-logdir`` of every replica, mounted (its subPath) at ``/kfj/logdir`` in the tensorflow
    container, and ``TFJOB_LOGDIR=/kfj/logdir`` in its environment. Without the annotation,
    unchanged. Raises OptionError for a logdir that is not ``pvc://CLAIM/SUBPATH``."""
    logdir = logdir_of(manifest)
    if logdir is None:
        return manifest
    claim, subpath = parse_pvc_logdir(logdir)
    volume = {"name": model.LOGDIR_VOLUME, "persistentVolumeClaim": {"claimName": claim}}
    mount = {"name": model.LOGDIR_VOLUME, "mountPath": model.LOGDIR_MOUNT, **({"subPath": subpath} if subpath else {})}
    for spec in (manifest.get("spec") or {}).get("tfReplicaSpecs", {}).values():
        pod = spec.setdefault("template", {}).setdefault("spec", {})
        pod["volumes"] = [v for v in pod.get("volumes") or [] if v.get("name") != model.LOGDIR_VOLUME] + [volume]
        for container in pod.get("containers") or []:
            if container.get("name") != model.DEFAULT_CONTAINER:
                continue
            mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") != model.LOGDIR_VOLUME]
            container["volumeMounts"] = [*mounts, dict(mount)]
            env = [e for e in container.get("env") or [] if e.get("name") != model.ENV_LOGDIR]
            container["env"] = [*env, {"name": model.ENV_LOGDIR, "value": model.LOGDIR_MOUNT}]
    return manifest
