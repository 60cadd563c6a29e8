"""Pod Security Standards, `baseline` and `restricted` (the checks of k8s.io/pod-security-admission,
policy version `latest`), for pod specs in tests: what PSA would refuse in a namespace labelled
`pod-security.kubernetes.io/enforce: restricted`. Each problem names the field, as PSA's message does.
"""

from __future__ import annotations

# Volume types `restricted` allows (everything else, hostPath first, is refused).
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}


def _containers(spec: dict) -> list[dict]:
    return [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]


def baseline_problems(spec: dict) -> list[str]:
    problems = [f"{f}=true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]
    problems += [f"hostPath volume {v['name']!r}" for v in spec.get("volumes") or [] if "hostPath" in v]
    pod_context = spec.get("securityContext") or {}
    problems += [f"sysctl {s['name']}" for s in pod_context.get("sysctls") or [] if s["name"] not in SAFE_SYSCTLS]
    if (pod_context.get("seccompProfile") or {}).get("type") == "Unconfined":
        problems.append("pod seccompProfile.type=Unconfined")
    for c in _containers(spec):
        context = c.get("securityContext") or {}
        if context.get("privileged"):
            problems.append(f"container {c['name']!r}: privileged")
        added = set((context.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
        if added:
            problems.append(f"container {c['name']!r}: capabilities.add {sorted(added)}")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            problems.append(f"container {c['name']!r}: hostPort")
        if context.get("procMount") not in (None, "Default"):
            problems.append(f"container {c['name']!r}: procMount")
        if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
            problems.append(f"container {c['name']!r}: seccompProfile.type=Unconfined")
    return problems


def restricted_problems(spec: dict) -> list[str]:
    """Everything PSA `restricted` refuses in this pod spec ([] when the pod is admitted)."""
    problems = baseline_problems(spec)
    problems += [
        f"volume {v['name']!r} of a type restricted refuses"
        for v in spec.get("volumes") or []
        if not (set(v) - {"name"}) <= RESTRICTED_VOLUMES
    ]
    pod_context = spec.get("securityContext") or {}
    if pod_context.get("runAsUser") == 0:
        problems.append("pod runAsUser=0")
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    for c in _containers(spec):
        context = c.get("securityContext") or {}
        name = c["name"]
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {name!r}: allowPrivilegeEscalation != false")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"container {name!r}: capabilities.drop lacks ALL")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"container {name!r}: capabilities.add beyond NET_BIND_SERVICE")
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if non_root is not True:
            problems.append(f"container {name!r}: runAsNonRoot != true")
        if context.get("runAsUser") == 0:
            problems.append(f"container {name!r}: runAsUser=0")
        seccomp = (context.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"container {name!r}: seccompProfile.type not RuntimeDefault or Localhost")
    return problems
