"""Reading a run's outcome back in the notebook: log lines → envelope → the value, or the error.

The replica wrote its envelope as frames in its log (frames.py). Which log to read is the
caller's choice: the result replica's when the job succeeded; when it failed, the failed
replicas' logs, where the error frame names the replica and the user's exception.

Pickled results are loaded with ``pickle.loads``: only read the result of a job this user
runs (the default ``allow_pickle=True``); pass ``allow_pickle=False`` for a job of unknown origin.
"""

from __future__ import annotations

import base64
import pickle
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import frames
from .errors import RemoteError, ResultError


class ResultNotice(UserWarning):
    """A result came back, but not as itself: by pickle (a notice) or as its repr (a warning)."""


@dataclass(frozen=True)
class Result:
    value: Any
    replica: str
    encoding: str  # "json" | "pickle" | "repr"
    notice: str  # one line, "" when the value came back as JSON


def decode_result(envelope: Mapping, *, allow_pickle: bool = True) -> Result:
    """The result an envelope carries; raises RemoteError (the user's code raised there) or
    ResultError (the result cannot be delivered)."""
    replica = str(envelope.get("replica") or "the replica")
    if envelope.get("status") == "error":
        error = envelope.get("error") or {}
        if error.get("origin") == "runner":
            raise ResultError(f"{replica}: {error.get('message')}")
        raise RemoteError.from_error(replica, error)
    encoding = envelope.get("encoding")
    kind = envelope.get("type") or "value"
    if encoding in ("json", "repr"):
        value = envelope.get("value")
    elif encoding == "pickle":
        if not allow_pickle:
            raise ResultError(f"{replica}'s result ({kind}) came back by pickle, which is not loaded for this job")
        try:
            value = pickle.loads(base64.b64decode(envelope["value"]))
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise ResultError(
                f"{replica}'s result ({kind}) cannot be unpickled here ({why}): make the module that "
                f"defines it importable in the notebook; it printed as {envelope.get('repr', '?')}"
            ) from None
    else:
        raise ResultError(f"{replica}'s result has an unknown encoding {encoding!r}: update kubeflow-jupyter")
    return Result(value, replica, str(encoding), str(envelope.get("notice") or ""))


def result_from_envelope(envelope: Mapping, *, allow_pickle: bool = True, warn: bool = True):
    """The value an envelope carries (a ResultNotice warning when it came back by pickle or as a
    repr); raises like :func:`decode_result`."""
    result = decode_result(envelope, allow_pickle=allow_pickle)
    if warn and result.notice:
        warnings.warn(ResultNotice(result.notice), stacklevel=2)
    return result.value


def envelope_from_log(lines: Iterable[str], replica: str = "") -> dict:
    """The envelope in a replica's log; ResultError when there is none or it cannot be read."""
    who = replica or "the replica"
    try:
        envelope = frames.decode_frames(lines)
    except frames.CorruptFrame as exc:
        raise ResultError(f"the result in {who}'s log cannot be read: {exc}") from None
    if envelope is None:
        raise ResultError(
            f"{who}'s log holds no result: it ended before sending one (killed, out of memory, "
            "or sys.exit with an error), or its log was rotated away"
        )
    return envelope


def read_result(lines: Iterable[str], replica: str = "", *, allow_pickle: bool = True, warn: bool = True):
    """The value in a replica's log lines, or the error it carries (see decode_result)."""
    return result_from_envelope(envelope_from_log(lines, replica), allow_pickle=allow_pickle, warn=warn)
