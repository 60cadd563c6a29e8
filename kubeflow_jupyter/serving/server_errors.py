"""What the model server answers a refused request, whatever the transport.

A :class:`ServingStatus` carries TF Serving's status code (the gRPC name,
``"NOT_FOUND"``) and its message; the gRPC service aborts with them, the REST
service maps the code to TF Serving's HTTP status. The client's errors, in the
user's terms, are :mod:`.errors`.
"""

from __future__ import annotations

# google.rpc.Code / TensorFlow's error codes, by number (TensorFlow's OpError carries the number).
_CODE_NAMES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)


class ServingStatus(Exception):
    """A failed request: gRPC status name (``"NOT_FOUND"``) and TF Serving's message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class SignatureMissing(ServingStatus):
    """Predict named a signature the servable does not have (gRPC's wording; REST words it its own way)."""

    def __init__(self, signature: str):
        super().__init__("FAILED_PRECONDITION", f'Serving signature key "{signature}" not found.')
        self.signature = signature


def invalid(message: str) -> ServingStatus:
    return ServingStatus("INVALID_ARGUMENT", message)


def not_found(message: str) -> ServingStatus:
    return ServingStatus("NOT_FOUND", message)


def code_name(code: int) -> str:
    """The status name of a numeric error code (a TensorFlow OpError's ``error_code``)."""
    return _CODE_NAMES[code] if 0 <= code < len(_CODE_NAMES) else "UNKNOWN"
