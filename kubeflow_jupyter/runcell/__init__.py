"""Running a notebook cell or a Python function on every replica of a TFJob, and its result back.

- payload.py   the files a replica runs in (user's --files + the runner), written locally or
               carried by a ConfigMap; build_cell_payload / build_function_payload
- shipping.py  a function by source, with the imports and notebook helpers it needs; arguments
- syntax.py    a cell must be plain Python (IPython syntax is refused, with the line)
- bootstrap.py the entry point on each replica: loads runner.py, from its cached code when it can
- runner.py    the runner on each replica (standard library only; shipped, never imported)
- frames.py    the result channel in the replica's log (standard library only; shipped too)
- results.py   log → envelope → the value, RemoteError or ResultError, in the notebook
- errors.py    PayloadError, PayloadTooLarge, RemoteError, ResultError
"""

from .errors import PayloadError, PayloadTooLarge, RemoteError, ResultError
from .frames import MAX_RESULT_BYTES, CorruptFrame, FrameReader, decode_frames, encode_frames, filter_output
from .payload import MAX_CONFIGMAP_BYTES, Payload, build_cell_payload, build_function_payload, missing_local_packages
from .results import Result, ResultNotice, decode_result, envelope_from_log, read_result, result_from_envelope

__all__ = [
    "MAX_CONFIGMAP_BYTES",
    "MAX_RESULT_BYTES",
    "CorruptFrame",
    "FrameReader",
    "Payload",
    "PayloadError",
    "PayloadTooLarge",
    "RemoteError",
    "Result",
    "ResultError",
    "ResultNotice",
    "build_cell_payload",
    "build_function_payload",
    "decode_frames",
    "decode_result",
    "encode_frames",
    "envelope_from_log",
    "filter_output",
    "missing_local_packages",
    "read_result",
    "result_from_envelope",
]
