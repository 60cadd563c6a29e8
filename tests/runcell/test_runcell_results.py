"""Reading the outcome in the notebook: values, RemoteError as the user's own exception type."""

from __future__ import annotations

import pickle
import warnings

import pytest

from kubeflow_jupyter.errors import KubeflowJupyterError
from kubeflow_jupyter.runcell import (
    RemoteError,
    ResultError,
    ResultNotice,
    decode_result,
    encode_frames,
    read_result,
    result_from_envelope,
)
from kubeflow_jupyter.runcell.frames import error_envelope, result_envelope

TRACE = 'Traceback (most recent call last):\n  File "<cell>", line 3, in <module>\n    raise ValueError("boom")\nValueError: boom\n'


def remote(type_name: str, message: str = "boom", module: str = "builtins", replica: str = "worker-1"):
    with pytest.raises(RemoteError) as caught:
        result_from_envelope(error_envelope(replica, type_name, module, message, TRACE))
    return caught.value


def test_remote_builtin_error_is_caught_as_that_type():
    error = remote("ValueError")
    assert isinstance(error, ValueError) and isinstance(error, RemoteError) and isinstance(error, KubeflowJupyterError)
    assert str(error) == "worker-1 raised ValueError: boom"
    assert (error.replica, error.remote_type, error.remote_module) == ("worker-1", "ValueError", "builtins")
    assert error.remote_traceback == TRACE
    assert not isinstance(error, TypeError)


def test_render_traceback_is_the_line_then_the_users_frames():
    lines = remote("ValueError")._render_traceback_()
    assert lines[0] == "worker-1 raised ValueError: boom"
    assert lines[2:] == ["Remote traceback (worker-1):", *TRACE.rstrip("\n").splitlines()]


@pytest.mark.parametrize(
    ("type_name", "base"),
    [
        ("KeyError", KeyError),
        ("FileNotFoundError", FileNotFoundError),
        ("ZeroDivisionError", ArithmeticError),
        ("StopIteration", StopIteration),
        ("ModuleNotFoundError", ImportError),
    ],
)
def test_other_builtins(type_name, base):
    error = remote(type_name, "'k'")
    assert isinstance(error, base) and str(error) == f"worker-1 raised {type_name}: 'k'"


@pytest.mark.parametrize(
    ("type_name", "module"),
    [
        ("UnicodeDecodeError", "builtins"),  # its constructor wants 5 arguments: plain RemoteError
        ("InvalidArgumentError", "tensorflow.python.framework.errors_impl"),
        ("ValueError", "mylib"),  # same name, not the builtin
        ("KeyboardInterrupt", "builtins"),  # not an Exception: never mixed in
        ("KubeflowJupyterError", "builtins"),
    ],
)
def test_non_builtin_or_awkward_types_are_plain_remote_errors(type_name, module):
    error = remote(type_name, module=module)
    assert type(error) is RemoteError and error.remote_module == module
    assert str(error) == f"worker-1 raised {type_name}: boom"


def test_remote_error_pickles_for_other_processes():
    error = remote("ValueError")
    again = pickle.loads(pickle.dumps(error))
    assert isinstance(again, ValueError) and str(again) == str(error) and again.remote_traceback == TRACE


def test_empty_message():
    assert str(remote("AssertionError", "")) == "worker-1 raised AssertionError"


def test_runner_errors_are_result_errors():
    too_big = result_envelope("chief-0", "x" * 50, max_bytes=10)
    with pytest.raises(ResultError, match=r"^chief-0: the result is"):
        result_from_envelope(too_big)


def test_values_and_notices():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert result_from_envelope(result_envelope("w", [1, {"a": None}])) == [1, {"a": None}]
    with pytest.warns(ResultNotice, match="came back by pickle"):
        assert result_from_envelope(result_envelope("w", frozenset({1}))) == frozenset({1})
    result = decode_result(result_envelope("w", (1,)))
    assert (result.value, result.encoding, result.replica) == ((1,), "pickle", "w") and "pickle" in result.notice
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert result_from_envelope(result_envelope("w", (1,)), warn=False) == (1,)


def test_pickle_can_be_refused_and_unloadable_pickles_explain():
    with pytest.raises(ResultError, match="came back by pickle, which is not loaded"):
        result_from_envelope(result_envelope("w", (1,)), allow_pickle=False)
    envelope = result_envelope("w", (1,))
    envelope["value"] = "gASVDgAAAAAAAACMB25vX3N1Y2iUjAF4lJOULg=="  # pickle of the global no_such.x
    envelope["repr"] = "X()"
    with pytest.raises(ResultError, match=r"cannot be unpickled here \(ModuleNotFoundError.*printed as X\(\)"):
        result_from_envelope(envelope)


def test_read_result_from_log_lines():
    log = ["hello\n", *(line + "\n" for line in encode_frames(result_envelope("chief-0", {"acc": 0.9})))]
    assert read_result(log, "chief-0") == {"acc": 0.9}
    with pytest.raises(ResultError, match="chief-0's log holds no result"):
        read_result(["hello\n"], "chief-0")
    with pytest.raises(ResultError, match=r"chief-0's log cannot be read: .*incomplete"):
        read_result(log[:-1], "chief-0")
    with pytest.raises(ResultError, match="unknown encoding"):
        result_from_envelope({"status": "ok", "encoding": "msgpack", "value": 1})
