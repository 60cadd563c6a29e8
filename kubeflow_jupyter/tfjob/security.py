"""A Pod Security ``restricted`` securityContext for the replica templates of a TFJob, where the
user wrote none. Pure: no I/O; the Kubernetes backend applies it to what it submits.

Why: clusters that enforce Pod Security ``restricted`` on the namespace of the TFJobs (the hub's
``kubeflow-user``, jupyterhub_config/k8s/namespace.yaml) refuse the replica pods of a TFJob that
does not ask for it, and the hub's ValidatingAdmissionPolicy ``tfjob-pod-security``
(jupyterhub_config/k8s/tfjob-policy.yaml) refuses such a TFJob when it is submitted. The seed's
examples carry no securityContext at all, and the parameter servers of the seed's v1alpha1 job
are written by the converter (:mod:`.legacy`), so a user could not even add one there.

What is filled in, and only where the field is absent (a value the user set is never changed, so
a user's ``privileged: true`` or ``runAsUser: 0`` is still refused by the policy):

- each pod template (``template.spec.securityContext``): ``runAsNonRoot: true``,
  ``seccompProfile: {type: RuntimeDefault}``; and, when some container would otherwise run as the
  image's user (no ``runAsUser`` in the pod nor in that container), ``runAsUser: 1000``,
  ``runAsGroup: 100``, ``fsGroup: 100``. ``runAsNonRoot`` alone is not enough: the kubelet refuses
  to start a container whose image runs as root (tensorflow/tensorflow's do) unless a non-zero
  ``runAsUser`` is given. 1000/100/100 are the notebooks' uid, gid and fs_gid (jupyterhub_config),
  so files a job writes to a shared volume are the notebook user's;
- each container and initContainer: ``allowPrivilegeEscalation: false`` and
  ``capabilities: {drop: [ALL]}`` (``drop`` only, when the user wrote ``capabilities`` without it).

Left out on purpose, so that the defaults never turn a job the user meant differently into one
the kubelet or the API server refuses for a reason they did not write: no ``runAsNonRoot`` (nor
uid) in a pod whose spec asks for uid 0 anywhere; no ``allowPrivilegeEscalation: false`` for a
container that is ``privileged`` or adds ``CAP_SYS_ADMIN`` (the Pod API refuses that combination);
nothing at all in a Windows pod (``os.name: windows``: these fields are Linux-only there).
"""

from __future__ import annotations

import copy

#: The notebooks' identity (jupyterhub_config: KubeSpawner uid, gid, fs_gid; model-server.yaml too).
DEFAULT_UID = 1000
DEFAULT_GID = 100
DEFAULT_FS_GROUP = 100
DEFAULT_SECCOMP = {"type": "RuntimeDefault"}
DROP_ALL = ["ALL"]
# The Pod API refuses allowPrivilegeEscalation: false beside privileged: true or capabilities.add
# "CAP_SYS_ADMIN" (that spelling only: ValidateSecurityContext compares the string).
_CAP_SYS_ADMIN = "CAP_SYS_ADMIN"


def with_restricted_defaults(manifest: dict) -> dict:
    """A copy of the TFJob ``manifest`` whose replica templates meet Pod Security ``restricted``
    where the user left the fields out (see the module's docstring). ``manifest`` is not changed;
    anything that is not shaped like a TFJob is copied as it is."""
    job = copy.deepcopy(manifest)
    spec = job.get("spec")
    replicas = spec.get("tfReplicaSpecs") if isinstance(spec, dict) else None
    if isinstance(replicas, dict):
        for replica in replicas.values():
            template = replica.get("template") if isinstance(replica, dict) else None
            pod = template.get("spec") if isinstance(template, dict) else None
            if isinstance(pod, dict):
                _restrict_pod(pod)
    return job


def _context(obj: dict) -> dict | None:
    """``obj["securityContext"]``, made a dict when absent or null; None when it is something else.
    A field set to null is absent too (as the API server reads it)."""
    ctx = obj.get("securityContext")
    if ctx is None:
        ctx = obj["securityContext"] = {}
    return ctx if isinstance(ctx, dict) else None


def _restrict_pod(pod: dict) -> None:
    if isinstance(pod.get("os"), dict) and pod["os"].get("name") == "windows":
        return
    containers = [
        c
        for key in ("initContainers", "containers")
        if isinstance(pod.get(key), list)
        for c in pod[key]
        if isinstance(c, dict)
    ]
    for container in containers:
        _restrict_container(container)
    ctx = _context(pod)
    if ctx is None:
        return
    contexts: list[dict] = [
        c["securityContext"] if isinstance(c.get("securityContext"), dict) else {} for c in containers
    ]
    asks_root = ctx.get("runAsUser") == 0 or any(c.get("runAsUser") == 0 for c in contexts)
    if ctx.get("runAsNonRoot") is None and not asks_root:
        ctx["runAsNonRoot"] = True
    if ctx.get("runAsUser") is None and any(c.get("runAsUser") is None and _non_root(c, ctx) for c in contexts):
        ctx["runAsUser"] = DEFAULT_UID
        if ctx.get("runAsGroup") is None:
            ctx["runAsGroup"] = DEFAULT_GID
        if ctx.get("fsGroup") is None:
            ctx["fsGroup"] = DEFAULT_FS_GROUP
    if ctx.get("seccompProfile") is None:
        ctx["seccompProfile"] = dict(DEFAULT_SECCOMP)


def _non_root(container_ctx: dict, pod_ctx: dict) -> bool:
    """Whether the container must run as non-root: its own runAsNonRoot, else the pod's."""
    own = container_ctx.get("runAsNonRoot")
    return (own if own is not None else pod_ctx.get("runAsNonRoot")) is True


def _restrict_container(container: dict) -> None:
    ctx = _context(container)
    if ctx is None:
        return
    capabilities = ctx.get("capabilities")
    if capabilities is None:
        capabilities = ctx["capabilities"] = {}
    added = capabilities.get("add") if isinstance(capabilities, dict) else None
    sys_admin = isinstance(added, list) and _CAP_SYS_ADMIN in added
    if ctx.get("allowPrivilegeEscalation") is None and ctx.get("privileged") is not True and not sys_admin:
        ctx["allowPrivilegeEscalation"] = False
    if isinstance(capabilities, dict) and capabilities.get("drop") is None:
        capabilities["drop"] = list(DROP_ALL)
