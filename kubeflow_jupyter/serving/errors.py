"""What a user of the prediction client sees when a request fails.

The server's status code and message (TF Serving's own words) are kept on the
error as ``code`` and ``server_message``; ``str(error)`` says it in the user's
terms and names the fix.
"""

from __future__ import annotations

from ..errors import KubeflowJupyterError


class ServingError(KubeflowJupyterError):
    """A model-server request failed. ``code`` is the gRPC status name (``"NOT_FOUND"``)."""

    def __init__(self, message: str, *, code: str = "UNKNOWN", server_message: str = ""):
        super().__init__(message)
        self.code = code
        self.server_message = server_message


class ServerUnavailable(ServingError):
    """Nothing answers at the address (UNAVAILABLE, connection refused)."""


class ModelNotFound(ServingError, LookupError):
    """The server has no such model, version or version label (NOT_FOUND).

    ``served``: ``{model: versions}`` when the server said what it serves (``kubeflow-jupyter serve`` does)."""

    served: dict[str, list[int]] | None = None


class SignatureNotFound(ServingError, LookupError):
    """The model has no signature of that name (FAILED_PRECONDITION)."""


class InvalidRequest(ServingError, ValueError):
    """The server rejected the inputs (INVALID_ARGUMENT): wrong names, types, shapes or data."""


class ServingTimeout(ServingError, TimeoutError):
    """No answer within the timeout (DEADLINE_EXCEEDED)."""


class ImageError(KubeflowJupyterError, ValueError):
    """An image argument could not be read."""
