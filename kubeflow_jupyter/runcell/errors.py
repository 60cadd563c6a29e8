"""What can go wrong when running code on replicas, as errors a front end shows in one message.

Build time (before anything is created): :class:`PayloadError` — the code, a function, an
argument or a file cannot be shipped; the message says why and what to do.
Run time, reading the result: :class:`RemoteError` — the user's code raised on a replica;
:class:`ResultError` — the result cannot be delivered (too large, log cut, cannot be unpickled).
"""

from __future__ import annotations

import builtins

from kubeflow_jupyter.errors import KubeflowJupyterError, OptionError


class PayloadError(OptionError):
    """The code, a function, an argument or a ``--files`` path cannot be shipped to the replicas."""


class PayloadTooLarge(PayloadError):
    """The payload exceeds what its carrier holds (a ConfigMap's ~1 MiB, the local snapshot limit)."""


class ResultError(KubeflowJupyterError):
    """The replica's result cannot be delivered: too large, its frame cut or altered in the log,
    missing (the replica ended without sending one), or it cannot be unpickled here."""


class RemoteError(KubeflowJupyterError):
    """The user's code raised on a replica.

    ``str(e)`` is one line: ``worker-1 raised ValueError: boom``; in IPython the user's own
    remote frames follow (``_render_traceback_``). When the remote type is a builtin exception,
    the instance is of a class deriving from both RemoteError and that type (see
    :meth:`from_error`), so ``except ValueError`` catches a remote ValueError."""

    def __init__(
        self,
        replica: str,
        remote_type: str,
        message: str,
        *,
        remote_module: str = "builtins",
        remote_traceback: str = "",
    ):
        self.replica = replica
        self.remote_type = remote_type
        self.remote_module = remote_module
        self.remote_message = message
        self.remote_traceback = remote_traceback
        super().__init__(self.headline)

    @property
    def headline(self) -> str:
        message = self.remote_message
        return (
            f"{self.replica} raised {self.remote_type}: {message}"
            if message
            else f"{self.replica} raised {self.remote_type}"
        )

    def __str__(self) -> str:
        return self.headline  # not the builtin base's __str__ (KeyError would quote it)

    def _render_traceback_(self) -> list[str]:
        lines = [self.headline]
        if self.remote_traceback:
            lines += ["", f"Remote traceback ({self.replica}):", *self.remote_traceback.rstrip("\n").splitlines()]
        return lines

    def __reduce__(self):
        return _rebuild, (
            self.replica,
            self.remote_type,
            self.remote_message,
            self.remote_module,
            self.remote_traceback,
        )

    @classmethod
    def from_error(cls, replica: str, error: dict) -> RemoteError:
        """The exception for an error envelope's ``error``: also an instance of the builtin
        exception type it names, when it names one that can be mixed in."""
        remote_type = str(error.get("type") or "Exception")
        module = str(error.get("module") or "")
        args = (replica, remote_type, str(error.get("message") or ""))
        kwargs = {"remote_module": module, "remote_traceback": str(error.get("traceback") or "")}
        mixed = _mixed_class(remote_type) if module == "builtins" else None
        if mixed is not None:
            try:
                return mixed(*args, **kwargs)
            except Exception:  # a builtin whose constructor wants more (UnicodeDecodeError)
                pass
        return RemoteError(*args, **kwargs)


_MIXED: dict[str, type | None] = {}


def _mixed_class(name: str) -> type | None:
    if name not in _MIXED:
        base = getattr(builtins, name, None)
        mixed = None
        if isinstance(base, type) and issubclass(base, Exception) and not issubclass(base, KubeflowJupyterError):
            try:
                mixed = type(f"Remote{name}", (RemoteError, base), {"__module__": __name__})
            except TypeError:  # layout conflict
                mixed = None
        _MIXED[name] = mixed
    return _MIXED[name]


def _rebuild(replica, remote_type, message, module, traceback):
    return RemoteError.from_error(
        replica, {"type": remote_type, "message": message, "module": module, "traceback": traceback}
    )
