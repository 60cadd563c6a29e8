"""ValidatingAdmissionPolicy (``admissionregistration.k8s.io/v1``) as kube-apiserver applies it
to a write, with the CEL evaluated by ``cel-python`` (``celpy``, installed with the ``test``
extra and imported only when a policy is loaded).

What the real server does, and this stand-in follows:

* a policy acts only through a ``ValidatingAdmissionPolicyBinding`` naming it; the request
  must match the policy's ``matchConstraints`` and the binding's ``matchResources``
  (resource rules on group/version/resource/operation, ``namespaceSelector`` against the
  namespace's labels, ``objectSelector`` against the object's) and every ``matchCondition``;
* ``variables`` are evaluated in order and read as ``variables.<name>``; the activation has
  ``object``, ``oldObject`` (null on CREATE), ``request`` and ``namespaceObject``;
* validations run in order; the first that is false (or fails to evaluate, with
  ``failurePolicy: Fail``) decides. Its ``messageExpression``, else its ``message``, else
  ``failed expression: <expression>``, becomes the denial;
* with ``Deny`` among the binding's ``validationActions`` the request is refused with the
  Status that ``admission.NewForbidden`` builds and the policy plugin then re-codes
  (k8s.io/apiserver/pkg/admission/plugin/policy/validating/dispatcher.go): message
  ``<resource>.<group> "<name>" is forbidden: ValidatingAdmissionPolicy '<policy>' with
  binding '<binding>' denied request: <message>``, reason = the validation's ``reason``
  (default ``Invalid``), code from the reason (Invalid 422, Forbidden 403, Unauthorized 401,
  RequestEntityTooLarge 413), and one cause carrying the policy message. ``Warn`` and
  ``Audit`` alone refuse nothing.

Writes to a subresource (``tfjobs/status``) match only rules that list the subresource, as
on the real server, so the operator's status updates are never checked against ``tfjobs``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .statuses import ApiError, failure, qualified

POLICY_KIND = "ValidatingAdmissionPolicy"
BINDING_KIND = "ValidatingAdmissionPolicyBinding"
API_VERSION = "admissionregistration.k8s.io/v1"
_CODES = {"Invalid": 422, "Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413}


@dataclass
class Request:
    """The admission attributes a policy sees (what kube-apiserver puts in ``request``)."""

    operation: str  # CREATE | UPDATE | DELETE | CONNECT
    group: str
    version: str
    resource: str  # plural, e.g. "tfjobs"
    subresource: str
    namespace: str
    name: str
    obj: dict | None
    old: dict | None = None
    user: str = ""
    namespace_labels: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False

    def cel_request(self) -> dict:
        return {
            "kind": {
                "group": self.group,
                "version": self.version,
                "kind": (self.obj or self.old or {}).get("kind", ""),
            },
            "resource": {"group": self.group, "version": self.version, "resource": self.resource},
            "subResource": self.subresource,
            "name": self.name,
            "namespace": self.namespace,
            "operation": self.operation,
            "userInfo": {"username": self.user},
            "dryRun": self.dry_run,
        }


@dataclass
class Denial:
    """One validation that refused the request."""

    policy: str
    binding: str
    message: str
    reason: str = "Invalid"


class _Compiled:
    """A policy with its CEL programs compiled once."""

    def __init__(self, policy: dict):
        import celpy

        self.name = policy["metadata"]["name"]
        spec = policy.get("spec") or {}
        self.spec = spec
        self.failure_policy = spec.get("failurePolicy", "Fail")
        env = celpy.Environment()

        def compile_(expression: str):
            return env.program(env.compile(expression))

        self.variables = [(v["name"], v["expression"], compile_(v["expression"])) for v in spec.get("variables") or []]
        self.conditions = [
            (c["name"], c["expression"], compile_(c["expression"])) for c in spec.get("matchConditions") or []
        ]
        self.validations = []
        for v in spec.get("validations") or []:
            message_program = compile_(v["messageExpression"]) if v.get("messageExpression") else None
            self.validations.append((v, compile_(v["expression"]), message_program))


class ValidatingAdmission:
    """The policies and bindings a cluster holds; :meth:`check` raises the server's ApiError."""

    def __init__(self, objects: Iterable[dict] = ()):
        self.policies: dict[str, _Compiled] = {}
        self.bindings: list[dict] = []
        self.add(objects)

    def add(self, objects: Iterable[dict]) -> None:
        """Load ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding objects (others are ignored)."""
        for obj in objects:
            if not obj or obj.get("apiVersion") != API_VERSION:
                continue
            if obj.get("kind") == POLICY_KIND:
                self.policies[obj["metadata"]["name"]] = _Compiled(copy.deepcopy(obj))
            elif obj.get("kind") == BINDING_KIND:
                name = obj["metadata"]["name"]
                self.bindings = [b for b in self.bindings if b["metadata"]["name"] != name] + [copy.deepcopy(obj)]

    def __bool__(self) -> bool:
        return bool(self.bindings)

    # -- deciding -------------------------------------------------------------------------
    def denials(self, request: Request, *, first_only: bool = True) -> list[Denial]:
        """The validations that refuse ``request`` under a binding with ``Deny``, in the server's
        order (bindings, then validations). ``first_only=False`` evaluates every validation of
        every matching policy: tests use it to see exactly which rules an object breaks."""
        found: list[Denial] = []
        for binding in self.bindings:
            spec = binding.get("spec") or {}
            policy = self.policies.get(spec.get("policyName", ""))
            if policy is None or "Deny" not in (spec.get("validationActions") or []):
                continue
            if not (
                _matches(policy.spec.get("matchConstraints") or {}, request, required=True)
                and _matches(spec.get("matchResources") or {}, request, required=False)
            ):
                continue
            for denial in self._evaluate(policy, binding["metadata"]["name"], request, not first_only):
                found.append(denial)
                if first_only:
                    return found
        return found

    def check(self, request: Request) -> None:
        """Raise the real server's Status error when a Deny binding refuses ``request``."""
        denials = self.denials(request)
        if denials:
            raise denied(request, denials[0])

    def _evaluate(self, policy: _Compiled, binding: str, request: Request, all_: bool) -> list[Denial]:
        import celpy
        from celpy import celtypes

        activation: dict[str, Any] = {
            "object": celpy.json_to_cel(request.obj),
            "oldObject": celpy.json_to_cel(request.old),
            "request": celpy.json_to_cel(request.cel_request()),
            "namespaceObject": celpy.json_to_cel(
                {"metadata": {"name": request.namespace, "labels": request.namespace_labels}}
            ),
        }
        variables = celtypes.MapType({})
        activation["variables"] = variables
        for name, _expression, program in policy.variables:
            try:
                variables[celtypes.StringType(name)] = _run(program, activation)
            except _EvalError as e:  # read lazily on the server: an error only where it is used
                variables[celtypes.StringType(name)] = e.value
        for name, _expression, program in policy.conditions:
            try:
                if not _truth(_run(program, activation)):
                    return []
            except _EvalError as e:
                if policy.failure_policy == "Ignore":
                    return []
                return [Denial(policy.name, binding, f"failed to evaluate match condition {name!r}: {e}")]
        out: list[Denial] = []
        for validation, program, message_program in policy.validations:
            expression = validation["expression"]
            try:
                if _truth(_run(program, activation)):
                    continue
                message = validation.get("message") or f"failed expression: {expression.strip()}"
                if message_program is not None:
                    try:
                        rendered = _run(message_program, activation)
                        if isinstance(rendered, str) and rendered.strip() and "\n" not in rendered:
                            message = str(rendered)
                    except _EvalError:
                        pass
                out.append(Denial(policy.name, binding, message.strip(), validation.get("reason") or "Invalid"))
            except _EvalError as e:
                if policy.failure_policy == "Ignore":
                    continue
                out.append(Denial(policy.name, binding, f"expression '{expression}' resulted in error: {e}"))
            if out and not all_:
                break
        return out


def denied(request: Request, denial: Denial) -> ApiError:
    """The Status kube-apiserver answers for a policy denial (see the module docstring)."""
    policy_message = (
        f"ValidatingAdmissionPolicy '{denial.policy}' with binding '{denial.binding}' denied request: {denial.message}"
    )
    name = request.name or ((request.obj or {}).get("metadata") or {}).get("generateName") or "Unknown"
    code = _CODES.get(denial.reason, 422)
    details: dict[str, Any] = {"name": name}
    if request.group:
        details["group"] = request.group
    details["kind"] = request.resource
    details["causes"] = [{"message": policy_message}]
    message = f'{qualified(request.resource, request.group)} "{name}" is forbidden: {policy_message}'
    return ApiError(failure(code, denial.reason, message, details))


# -- matching ---------------------------------------------------------------------------------
def _matches(match: dict, request: Request, *, required: bool) -> bool:
    """``matchConstraints`` (rules required) or a binding's ``matchResources`` (rules optional)."""
    if not _selector_matches(match.get("namespaceSelector"), request.namespace_labels):
        return False
    labels = ((request.obj or request.old or {}).get("metadata") or {}).get("labels") or {}
    if not _selector_matches(match.get("objectSelector"), labels):
        return False
    rules = match.get("resourceRules")
    if rules is None:
        if required:
            return False
    elif not any(_rule_matches(rule, request) for rule in rules):
        return False
    return not any(_rule_matches(rule, request) for rule in match.get("excludeResourceRules") or [])


def _rule_matches(rule: dict, request: Request) -> bool:
    def among(values, value) -> bool:
        values = values or []
        return "*" in values or value in values

    if rule.get("resourceNames") and request.name not in rule["resourceNames"]:
        return False
    wanted = f"{request.resource}/{request.subresource}" if request.subresource else request.resource
    resources = rule.get("resources") or []
    resource_ok = (
        wanted in resources
        or "*/*" in resources
        or (not request.subresource and "*" in resources)
        or (request.subresource and f"{request.resource}/*" in resources)
        or (request.subresource and f"*/{request.subresource}" in resources)
    )
    return (
        among(rule.get("apiGroups"), request.group)
        and among(rule.get("apiVersions"), request.version)
        and among(rule.get("operations"), request.operation)
        and resource_ok
    )


def _selector_matches(selector: dict | None, labels: dict[str, str]) -> bool:
    """A LabelSelector; absent or empty matches everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# -- running CEL ------------------------------------------------------------------------------
class _EvalError(Exception):
    def __init__(self, value):
        super().__init__(_describe(value))
        self.value = value


def _describe(error) -> str:
    args = getattr(error, "args", ())
    return str(args[0]) if args else str(error)


def _run(program, activation: dict):
    from celpy.evaluation import CELEvalError

    try:
        result = program.evaluate(activation)
    except CELEvalError as e:
        raise _EvalError(e) from None
    if isinstance(result, CELEvalError):
        raise _EvalError(result)
    return result


def _truth(value) -> bool:
    from celpy import celtypes

    if not isinstance(value, celtypes.BoolType):
        raise _EvalError(TypeError(f"expected a bool, got {type(value).__name__}"))
    return bool(value)


__all__ = ["Denial", "Request", "ValidatingAdmission", "denied"]
