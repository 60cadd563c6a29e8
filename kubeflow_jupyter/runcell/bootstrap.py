"""The replica's entry point: loads the runner (``_kfj/runner.py``) and runs it.

    python -u _kfj/bootstrap.py [--skip-packages] [--copy-payload]

Shipped as ``_kfj/bootstrap.py`` in every run payload; standard library only, Python ≥ 3.8
(see runner.py for what a replica does). It is small on purpose: Python compiles a script
at every start and never caches its bytecode, and a fresh payload directory per job means no
``__pycache__`` either, so every replica of every job would compile the runner and the result
channel again. Where the payload was written by the interpreter that runs it (the local
backend), ``_kfj/<module>.code`` holds their code, compiled at write time (see
``payload.code_cache``); it is used when its header matches this interpreter's magic number,
optimisation level and the source file's size and mtime, else the source is compiled as usual.
"""

import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))


def code_header(source_path):
    """What a ``.code`` file starts with when it holds ``source_path``'s code compiled by this
    interpreter: its bytecode magic number, ``-O`` level, the source's size and mtime (a hand
    edit of the source wins over a stale cache, like a ``.pyc``)."""
    magic = sys.modules["_frozen_importlib_external"].MAGIC_NUMBER  # loaded at start-up: free
    stat = os.stat(source_path)
    return (
        magic
        + bytes((sys.flags.optimize,))
        + stat.st_size.to_bytes(8, "little")
        + stat.st_mtime_ns.to_bytes(8, "little")
    )


def load_code(name):
    """The code object of ``_kfj/<name>.py``, its filename that path (the runner tells its own
    frames from the user's by it)."""
    path = os.path.join(HERE, name + ".py")
    try:
        with open(os.path.join(HERE, name + ".code"), "rb") as f:
            data = f.read()
        header = code_header(path)
        if data[: len(header)] == header:
            import _imp
            import marshal

            code = marshal.loads(data[len(header) :])
            _imp._fix_co_filename(code, path)  # what importlib does with a .pyc: every nested code too
            return code
    except Exception:  # no cache (a cluster), another interpreter, a damaged file: compile
        pass
    with open(path, "rb") as f:
        return compile(f.read(), path, "exec", dont_inherit=True)


def load_module(name):
    """``_kfj/<name>.py`` as the module ``_kfj_<name>`` (not on sys.path: a user module named
    like a runner file stays the user's)."""
    module = type(sys)("_kfj_" + name)
    module.__file__ = os.path.join(HERE, name + ".py")
    sys.modules[module.__name__] = module
    exec(load_code(name), module.__dict__)
    return module


if __name__ == "__main__":
    # The runner replaces __main__ with the user's fresh module: keep this one reachable.
    sys.modules["_kfj_bootstrap"] = sys.modules[__name__]
    sys.exit(load_module("runner").main(sys.argv[1:]))
