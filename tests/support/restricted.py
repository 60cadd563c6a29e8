"""The securityContext values that make a TFJob's pods pass Kubernetes' "restricted" Pod Security
Standard, written out by hand: what the tests expect ``with_restricted_defaults`` to fill in."""

from __future__ import annotations

POD_DEFAULTS = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 100,
    "fsGroup": 100,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_DEFAULTS = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
