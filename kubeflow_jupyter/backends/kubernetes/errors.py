"""Kubernetes API failures → one message a notebook user can act on."""

from __future__ import annotations

import json
import re

import yaml

from ...errors import AlreadyExists, BackendError, FieldProblem, JobNotFound, KubeflowJupyterError, SpecError
from .connection import ENV_CONTEXT, Connection

INSTALL_OPERATOR = (
    'kubectl apply -k "github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=v1.9.0"'
)
_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)" '
    r'in API group "(?P<group>[^"]*)"(?: in the namespace "(?P<namespace>[^"]+)")?'
)
# kube-apiserver's ValidatingAdmissionPolicy denial (plugin/policy/validating/dispatcher.go), inside
# admission.NewForbidden's `<resource>.<group> "<name>" is forbidden: ...`; 422 Invalid unless the
# validation names another reason (403 Forbidden, 401, 413).
_POLICY_DENIED = re.compile(
    r"ValidatingAdmissionPolicy '(?P<policy>[^']+)'(?: with binding '(?P<binding>[^']*)')? "
    r"denied request: (?P<message>.*)",
    re.DOTALL,
)


class PermissionDenied(BackendError):
    """403: the identity lacks an RBAC permission; the message carries the rule to add."""


class CRDNotInstalled(BackendError):
    """The cluster does not serve kubeflow.org/v1 TFJobs."""


class PolicyDenied(SpecError):
    """A ValidatingAdmissionPolicy of the cluster refused the TFJob: nothing was created or changed.

    A SpecError (the spec must change), whose message is one line: the policy and its own message,
    which names the rule and the fix."""

    def __init__(self, policy: str, binding: str | None, reason: str, name: str | None, where: str):
        self.policy, self.binding, self.reason, self.name, self.where = policy, binding, reason, name, where
        super().__init__(FieldProblem("", reason))

    def _format(self) -> str:
        job = f"TFJob {self.name!r}" if self.name else "the TFJob"
        return f"the cluster's admission policy {self.policy!r} refused {job} {self.where}: {self.reason}"


def status_body(exc) -> dict | None:
    """The ``Status`` object of an ApiException, or None when the body is not one (``404 page not found``)."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        return None
    return body if isinstance(body, dict) and body.get("kind") == "Status" else None


def rbac_rule(user: str, verb: str, resource: str, group: str, namespace: str | None) -> str:
    """The smallest Role (ClusterRole at cluster scope) + binding that grants exactly this."""
    scoped = {"namespace": namespace} if namespace else {}
    kind = "Role" if namespace else "ClusterRole"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": "kubeflow-jupyter", **scoped},
        "rules": [{"apiGroups": [group], "resources": [resource], "verbs": [verb]}],
    }
    sa = re.fullmatch(r"system:serviceaccount:([^:]+):([^:]+)", user)
    subject = (
        {"kind": "ServiceAccount", "name": sa.group(2), "namespace": sa.group(1)}
        if sa
        else {"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}
    )
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": f"{kind}Binding",
        "metadata": {"name": "kubeflow-jupyter", **scoped},
        "subjects": [subject],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": "kubeflow-jupyter"},
    }
    return yaml.safe_dump_all([role, binding], sort_keys=False, default_flow_style=None).strip()


def _forbidden(message: str, conn: Connection) -> KubeflowJupyterError:
    m = _FORBIDDEN.search(message)
    if not m:
        return PermissionDenied(f"the Kubernetes API server {conn.where()} refused: {message}")
    user, verb, resource, group, ns = m.group("user", "verb", "resource", "group", "namespace")
    scope = f"in namespace {ns!r}" if ns else "at cluster scope"
    group_name = group or "core"
    return PermissionDenied(
        f"Kubernetes refused: {user} may not {verb} {resource} (API group {group_name}) {scope}. "
        f"Ask a cluster admin to grant it, for example with:\n\n{rbac_rule(user, verb, resource, group, ns)}\n\n"
        "(kubectl apply -f that YAML; docs/kubernetes.md lists the whole Role kubeflow-jupyter needs)"
    )


def api_failures() -> tuple[type[BaseException], ...]:
    """What a call to the API server raises when the server says no or cannot be reached
    (anything else is a bug and must surface as one)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    return ApiException, HTTPError, OSError


def translate(exc: BaseException, conn: Connection, *, name: str | None = None) -> KubeflowJupyterError:
    """A failure of a call to the API server → a KubeflowJupyterError whose str is the user message."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, KubeflowJupyterError):
        return exc
    if not isinstance(exc, ApiException):
        return unreachable(exc, conn)
    status = status_body(exc)
    message = (status or {}).get("message") or (exc.body or exc.reason or "").strip()
    where = f"in namespace {conn.namespace!r} {conn.where()}"
    code = exc.status
    if status is not None and (policy := _POLICY_DENIED.search(message)):
        return PolicyDenied(
            policy.group("policy"),
            policy.group("binding"),
            " ".join(policy.group("message").split()),
            name,
            f"in namespace {conn.namespace!r}",
        )
    if code == 401:
        return BackendError(
            f"the Kubernetes API server {conn.where()} rejected the credentials (401 Unauthorized): the token or "
            "certificate is invalid or expired — refresh your kubeconfig, or run locally with --backend local"
        )
    if code == 403:
        return _forbidden(message, conn)
    if code == 404 and status is None:
        return CRDNotInstalled(
            f"the TFJob CRD (kubeflow.org/v1) is not installed on this cluster ({conn.host}) — install Kubeflow "
            f"training-operator: {INSTALL_OPERATOR}"
        )
    if code == 404 and name:
        return JobNotFound(name, where)
    if code == 409 and (status or {}).get("reason") == "AlreadyExists" and name:
        return AlreadyExists(name, where)
    if code == 422:
        causes = ((status or {}).get("details") or {}).get("causes") or []
        problems = [FieldProblem(c.get("field", ""), c.get("message", "")) for c in causes]
        return SpecError(problems or [FieldProblem("", message)])
    if code == 400:
        return BackendError(f"the Kubernetes API server refused the request: {message}")
    return BackendError(
        f"the Kubernetes API server {conn.where()} failed ({code} {exc.reason}): {message} — "
        "try again; if it persists, the cluster needs attention"
    )


def unreachable(exc: BaseException, conn: Connection) -> KubeflowJupyterError:
    """Connection refused, timeouts, TLS: say which server was tried and how to point elsewhere."""
    import ssl

    chain = _causes(exc)
    text = " ".join(str(e) for e in chain).lower()
    tls = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
    if tls is not None:
        detail = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or str(tls)
        why = (
            f"TLS verification failed ({detail}) — the server's certificate does not match the cluster CA "
            "in the configuration"
        )
    elif "refused" in text:
        why = "connection refused"
    elif "timed out" in text or "timeout" in text:
        why = "the connection timed out"
    else:
        why = _short(str(chain[-1])) or type(exc).__name__
    return BackendError(
        f"cannot reach the Kubernetes API server {conn.where()}: {why}. Point --kubeconfig or $KUBECONFIG "
        f"(and --context or ${ENV_CONTEXT}) at a reachable cluster, or run on this machine with --backend local"
    )


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (urllib3 keeps the cause in ``reason`` or ``args``)."""
    chain: list[BaseException] = []
    pending = [exc]
    while pending:
        e = pending.pop(0)
        if e is None or any(e is seen for seen in chain):
            continue
        chain.append(e)
        wrapped = [getattr(e, "reason", None), e.__cause__, e.__context__, *e.args]
        pending += [w for w in wrapped if isinstance(w, BaseException)]
    return chain


def _short(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."
