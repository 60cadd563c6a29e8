"""``Status`` bodies exactly as kube-apiserver writes them (k8s.io/apimachinery/pkg/api/errors)."""

from __future__ import annotations


class ApiError(Exception):
    """Raised inside the fake; the HTTP layer answers with ``status`` as JSON."""

    def __init__(self, status: dict):
        super().__init__(status.get("message", ""))
        self.status = status

    @property
    def code(self) -> int:
        return int(self.status["code"])


def failure(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    """A ``Failure`` Status body (without ``details`` when None)."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def qualified(resource: str, group: str) -> str:
    """``tfjobs.kubeflow.org``, or ``pods`` for the core group."""
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str, **extra) -> dict:
    d = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = kind
    d.update(extra)
    return d


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        failure(
            409,
            "AlreadyExists",
            f'{qualified(resource, group)} "{name}" already exists',
            _details(name, group, resource),
        )
    )


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        failure(404, "NotFound", f'{qualified(resource, group)} "{name}" not found', _details(name, group, resource))
    )


def conflict(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        failure(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": '
            "the object has been modified; please apply your changes to the latest version and try again",
            _details(name, group, resource),
        )
    )


def invalid(kind: str, group: str, name: str, causes: list[dict]) -> ApiError:
    """422 as ``errors.NewInvalid``: one cause inline, several in brackets."""
    parts = [f"{c['field']}: {c['message']}" for c in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return ApiError(
        failure(
            422,
            "Invalid",
            f'{kind}{"." + group if group else ""} "{name}" is invalid: {joined}',
            _details(name, group, kind, causes=causes),
        )
    )


def forbidden(
    resource: str, group: str, name: str, user: str, verb: str, subresource: str, namespace: str | None
) -> ApiError:
    what = f'{qualified(resource, group)} "{name}"' if name else qualified(resource, group)
    full = f"{resource}/{subresource}" if subresource else resource
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    reason = f'User "{user}" cannot {verb} resource "{full}" in API group "{group}"{scope}'
    return ApiError(failure(403, "Forbidden", f"{what} is forbidden: {reason}", _details(name, group, resource)))


def unauthorized() -> ApiError:
    return ApiError(failure(401, "Unauthorized", "Unauthorized"))


def method_not_allowed() -> ApiError:
    return ApiError(
        failure(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})
    )


def bad_request(message: str) -> ApiError:
    return ApiError(failure(400, "BadRequest", message))


def internal_error(message: str) -> ApiError:
    return ApiError(
        failure(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})
    )


def expired(requested: str, oldest: int) -> dict:
    """The ``ERROR`` watch event object after compaction (etcd3 ``too old resource version``)."""
    return failure(410, "Expired", f"too old resource version: {requested} ({oldest})")


def success(name: str, group: str, kind: str, uid: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": group, "kind": kind, "uid": uid},
    }
