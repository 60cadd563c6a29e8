"""The runner: runs a notebook cell or a shipped function on one replica and reports back.

Shipped as ``_kfj/runner.py`` in every run payload, beside ``bootstrap.py`` (the entry point
that loads this file), ``frames.py``, ``run.json`` (what to run) and ``code.py`` (the cell, or
the function's source). It runs in the job's image — a plain ``tensorflow/tensorflow`` has no
kubeflow-jupyter — so it needs only the Python standard library and must work on Python ≥ 3.8.
Never imported by the package (but for tests).

    python -u _kfj/bootstrap.py [--skip-packages] [--copy-payload]

The working directory is the run's directory: the user's ``--files`` are there and it is put
first on ``sys.path`` so their helper modules import. ``--copy-payload`` copies those files
from the payload's directory (a read-only ConfigMap mount) into the working directory first
(a writable emptyDir on a cluster, so the code can write files beside its helpers like it
does locally). ``--skip-packages`` skips the pip install of ``run.json``'s packages (the local
backend never installs into the user's environment).

On every replica: the code runs in a fresh ``__main__`` module. For a cell, every statement
runs and, when the last one is an expression (not ending in ``;``), its value is the result,
like IPython's ``Out[n]``. On the result replica (``run.json``'s ``result_replica``, else the
chief, else the master, else worker 0 — the operator's choice, as
``kubeflow_jupyter.tfjob.status.default_replica_id``), the result goes to stdout as frames
(see frames.py). When the code raises, on any replica: the traceback of the user's own frames
goes to stderr, an error frame to stdout, and the exit code is 1.
"""

# Startup cost is paid by every replica: no contextlib, no importlib.util; _ast only for a cell
# the notebook did not split (see run_cell); frames.py (and its zlib, binascii) only when a
# frame is sent.
import builtins
import json
import linecache
import os
import sys
import types

HERE = os.path.dirname(os.path.realpath(__file__))
PAYLOAD_ROOT = os.path.dirname(HERE)
FRAMES_PATH = os.path.join(HERE, "frames.py")
#: The frames a user's traceback leaves out: the entry point's, this file's, the result channel's.
RUNNER_FILES = {os.path.realpath(os.path.join(HERE, name)) for name in ("bootstrap.py", "runner.py", "frames.py")}
# The order training-operator picks the job's master role in; then the rest, as REPLICA_TYPES.
RESULT_TYPE_ORDER = ("chief", "master", "worker", "evaluator", "ps")


def load_frames():
    module = sys.modules.get("_kfj_frames")
    if module is None and "_kfj_bootstrap" in sys.modules:  # its cached code, when there is one
        module = sys.modules["_kfj_bootstrap"].load_module("frames")
    if module is None:
        module = types.ModuleType("_kfj_frames")
        module.__file__ = FRAMES_PATH
        sys.modules["_kfj_frames"] = module
        with open(FRAMES_PATH, encoding="utf-8") as f:
            exec(compile(f.read(), FRAMES_PATH, "exec", dont_inherit=True), module.__dict__)
    return module


class _LazyFrames:
    """frames.py, loaded on first use: a replica that sends nothing never loads it."""

    def __getattr__(self, name):
        return getattr(load_frames(), name)


def identity(tf_config_text, result_replica):
    """(this replica's id, whether it sends the result). No TF_CONFIG: a one-replica job."""
    if tf_config_text:
        try:
            config = json.loads(tf_config_text)
            task = config.get("task") or {}
            replica = "{}-{}".format(str(task["type"]).lower(), int(task["index"]))
            cluster = config.get("cluster") or {}
        except (ValueError, KeyError, TypeError, AttributeError):
            replica = None
        if replica:
            if not result_replica:
                result_replica = default_result_replica(cluster)
            return replica, replica == result_replica
    replica = result_replica or "worker-0"
    return replica, True


def default_result_replica(cluster):
    present = {str(kind).lower(): hosts for kind, hosts in cluster.items() if hosts}
    for kind in RESULT_TYPE_ORDER:
        if kind in present:
            return kind + "-0"
    return None


def install_packages(packages):
    import subprocess

    # An argv list, never a shell line: a package spec is data, not a command.
    command = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check"]
    sys.stderr.write("[kubeflow-jupyter] pip install {}\n".format(" ".join(packages)))
    sys.stderr.flush()
    code = subprocess.call(command + list(packages))
    import importlib

    importlib.invalidate_caches()
    return code


def copy_payload(files, source_root, target_root):
    import shutil

    for relative in files:
        source = os.path.join(source_root, relative)
        target = os.path.join(target_root, relative)
        os.makedirs(os.path.dirname(target) or target_root, exist_ok=True)
        shutil.copyfile(source, target)  # follows the ConfigMap mount's symlinks
        if os.access(source, os.X_OK):
            os.chmod(target, 0o755)


def put_first_on_path(directory):
    """The working directory first on sys.path; not the runner's own directory (python puts the
    script's directory there), so a user module named like a runner file is the user's."""
    sys.path[:] = [p for p in sys.path if not p or os.path.realpath(p) != HERE]
    if sys.path and sys.path[0] in ("", "."):
        sys.path[0] = directory
    else:
        sys.path.insert(0, directory)


def fresh_main():
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = module  # so pickle and multiprocessing see the user's __main__
    return module.__dict__


def register_source(filename, source):
    """linecache serves the code to tracebacks, like IPython does for cells (mtime None:
    checkcache leaves the entry alone)."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def ends_with_semicolon(source, node):
    line = source.splitlines()[node.end_lineno - 1].encode("utf-8")
    return line[node.end_col_offset :].decode("utf-8", "replace").lstrip().startswith(";")


def run_cell(source, filename, namespace, value_line=None):
    """Run the cell; return the value of its last expression (None without one).

    ``value_line`` (run.json's, found by the notebook's parser, see syntax.value_line): the line
    the value's expression starts at, at its beginning; 0: the cell has no value. The statements
    above it and the expression are compiled from the text, each at its own line numbers, without
    building an AST here (importing _ast is a cost on every replica). None: parse the cell here."""
    if value_line is None:
        return run_cell_parsed(source, filename, namespace)
    if value_line == 0:
        statements, expression = compile(source, filename, "exec", dont_inherit=True), None
    else:
        # The parser's line numbering: \r\n and \r are newlines, nothing else is.
        lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        # Both compiled before anything runs: a syntax error anywhere runs nothing, as in one piece.
        above = "\n".join(lines[: value_line - 1]) + "\n"
        statements = compile(above, filename, "exec", dont_inherit=True)
        below = "\n" * (value_line - 1) + "\n".join(lines[value_line - 1 :])
        expression = compile(below, filename, "eval", dont_inherit=True)
    exec(statements, namespace)
    return None if expression is None else eval(expression, namespace)


def run_cell_parsed(source, filename, namespace):
    import _ast as ast

    tree = compile(source, filename, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    body = list(tree.body)
    last = None
    if body and isinstance(body[-1], ast.Expr) and not ends_with_semicolon(source, body[-1]):
        last = body.pop().value
    # dont_inherit: the runner's own compiler flags must not change the user's code.
    exec(compile(ast.Module(body=body, type_ignores=[]), filename, "exec", dont_inherit=True), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(body=last), filename, "eval", dont_inherit=True), namespace)


def decode_arguments(arguments):
    if arguments.get("encoding") == "pickle":
        import base64
        import pickle

        args, kwargs = pickle.loads(base64.b64decode(arguments["value"]))
    else:
        args, kwargs = arguments.get("value") or ([], {})
    return list(args), dict(kwargs)


def run_function(source, filename, namespace, name, arguments):
    exec(compile(source, filename, "exec", dont_inherit=True), namespace)
    args, kwargs = decode_arguments(arguments)
    return namespace[name](*args, **kwargs)


def _drop_runner_frames(summary, seen):
    import traceback

    if summary is None or id(summary) in seen:
        return
    seen.add(id(summary))
    kept = [f for f in summary.stack if os.path.realpath(os.path.abspath(f.filename)) not in RUNNER_FILES]
    summary.stack = traceback.StackSummary.from_list(kept)
    _drop_runner_frames(summary.__cause__, seen)
    _drop_runner_frames(summary.__context__, seen)
    for sub in getattr(summary, "exceptions", None) or ():  # exception groups (3.11+)
        _drop_runner_frames(sub, seen)


def user_traceback(exc):
    """The traceback as Python prints it, with only the user's frames (and the libraries they
    called): the runner's frames say nothing to the user."""
    import traceback  # only once something failed: not a cost at every start

    summary = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    _drop_runner_frames(summary, set())
    return "".join(summary.format())


def describe(exc):
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


def emit(frames, envelope):
    """Write the frames to fd 1, one write per line (each < PIPE_BUF), after the user's output."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:  # noqa: SIM105 (contextlib: one more import on every replica)
            stream.flush()
        except Exception:
            pass
    for line in frames.encode_frames(envelope):
        data = (line + "\n").encode("ascii")
        while data:
            data = data[os.write(1, data) :]


def main(argv):
    frames = _LazyFrames()
    with open(os.path.join(HERE, "run.json"), encoding="utf-8") as f:
        run = json.load(f)
    replica, sends_result = identity(os.environ.get("TF_CONFIG"), run.get("result_replica"))
    workdir = os.getcwd()
    if "--copy-payload" in argv and os.path.realpath(workdir) != os.path.realpath(PAYLOAD_ROOT):
        copy_payload(run.get("files", []), PAYLOAD_ROOT, workdir)
    packages = run.get("packages") or []
    if packages and "--skip-packages" not in argv:
        code = install_packages(packages)
        if code != 0:
            message = "pip install {} failed (exit code {}): see the lines above in this replica's log".format(
                " ".join(packages), code
            )
            sys.stderr.write(message + "\n")
            emit(
                frames,
                frames.error_envelope(
                    replica, "PackageInstallError", "kubeflow_jupyter.runcell", message, origin="runner"
                ),
            )
            return 1
    put_first_on_path(workdir)

    with open(os.path.join(HERE, "code.py"), encoding="utf-8") as f:
        source = f.read()
    filename = run.get("filename") or "<cell>"
    register_source(filename, source)
    namespace = fresh_main()
    sys.argv = [filename]
    exit_code = 0
    try:
        if run.get("kind") == "function":
            value = run_function(source, filename, namespace, run["function"], run.get("arguments") or {})
        else:
            value = run_cell(source, filename, namespace, run.get("value_line"))
    except SystemExit as exc:
        # sys.exit() in the code: 0/None is a success without a value, like a script's.
        exit_code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exit_code == 0:
            value = None
        else:
            message = describe(exc)
            emit(frames, frames.error_envelope(replica, "SystemExit", "builtins", message, user_traceback(exc)))
            return exit_code
    except Exception as exc:
        text = user_traceback(exc)
        sys.stderr.write(text)
        kind = type(exc)
        emit(frames, frames.error_envelope(replica, kind.__qualname__, kind.__module__, describe(exc), text))
        return 1
    if sends_result:
        envelope = frames.result_envelope(replica, value, int(run.get("max_result_bytes") or frames.MAX_RESULT_BYTES))
        emit(frames, envelope)
        if envelope["status"] != "ok":
            sys.stderr.write(envelope["error"]["message"] + "\n")
            return 1
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
