"""Shipping a function by source: what is accepted, what is refused (one line), and that it runs."""

from __future__ import annotations

import functools
import itertools
import json as jsonlib
import linecache
import math
import sys
import textwrap
import types
from textwrap import dedent

import pytest

from kubeflow_jupyter.runcell import PayloadError, ResultNotice, build_function_payload, read_result
from kubeflow_jupyter.runcell.shipping import encode_arguments, ship_function

SCALE = 3


def uses_modules(n, *, label="n"):
    return {"sqrt": math.sqrt(n), "dumped": jsonlib.dumps([label, n]), "text": dedent("  x")}


def uses_a_module_value(n):
    return n * SCALE


def recursive(n):
    return 1 if n <= 1 else n * recursive(n - 1)


def with_nested_function(values):
    def inner(v):
        return math.floor(v)

    return [inner(v) for v in values]


def echo(*args, **kwargs):
    return [list(args), kwargs, [type(a).__name__ for a in args]]


_cells = itertools.count()


def notebook(source: str) -> dict:
    """A simulated notebook: the cell's functions live in a ``__main__`` module and their
    source is in linecache, as IPython arranges."""
    namespace = types.ModuleType("__main__").__dict__
    filename = f"<notebook-cell-{next(_cells)}>"
    source = textwrap.dedent(source)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def test_module_function_ships_with_its_imports_and_runs(run_replica):
    shipped = ship_function(uses_modules)
    assert shipped.name == "uses_modules"
    assert "import json as jsonlib\n" in shipped.source and "import math\n" in shipped.source
    assert "from textwrap import dedent\n" in shipped.source
    payload = build_function_payload(uses_modules, [16], {"label": "sixteen"})
    assert payload.description == "uses_modules(16, label='sixteen')"
    assert payload.run["function"] == "uses_modules" and payload.run["arguments"]["encoding"] == "json"
    replica = run_replica(payload)
    assert replica.returncode == 0, replica.stderr
    assert read_result(replica.lines) == {"sqrt": 4.0, "dumped": '["sixteen", 16]', "text": "x"}


def test_a_value_of_an_importable_module_is_imported_from_it():
    assert f"from {__name__} import SCALE\n" in ship_function(uses_a_module_value).source


def test_recursion_and_nested_functions(run_replica):
    assert read_result(run_replica(build_function_payload(recursive, [5])).lines) == 120
    assert "import math" in ship_function(with_nested_function).source
    assert read_result(run_replica(build_function_payload(with_nested_function, [[1.5, 2.7]])).lines) == [1, 2]


def test_arguments_by_json_or_pickle_arrive_exactly(run_replica):
    json_payload = build_function_payload(echo, [1, "a", [2.5]], {"k": None})
    assert json_payload.run["arguments"] == {"encoding": "json", "value": [[1, "a", [2.5]], {"k": None}]}
    assert read_result(run_replica(json_payload).lines) == [[1, "a", [2.5]], {"k": None}, ["int", "str", "list"]]
    pickled = build_function_payload(echo, [(1, 2), {3}], {"frac": 0.5})
    assert pickled.run["arguments"]["encoding"] == "pickle"
    with pytest.warns(ResultNotice):
        value = read_result(run_replica(pickled).lines)
    assert value == [[(1, 2), {3}], {"frac": 0.5}, ["tuple", "set"]]


def test_notebook_function_ships_with_notebook_helpers(run_replica):
    ns = notebook("""
        import statistics as st
        import functools

        def logged(fn):
            @functools.wraps(fn)
            def wrapper(*args):
                return ["logged", fn(*args)]
            return wrapper

        def spread(values):
            return max(values) - min(values)

        @logged
        def summary(values):
            return {"mean": st.mean(values), "spread": spread(values)}
        """)
    shipped = ship_function(ns["summary"])
    assert "import statistics as st" in shipped.source and "import functools" in shipped.source
    assert shipped.source.index("def spread") < shipped.source.index("def summary")
    assert "def logged" in shipped.source and "@logged" in shipped.source
    replica = run_replica(build_function_payload(ns["summary"], [[1, 2, 6]]))
    assert replica.returncode == 0, replica.stderr
    assert read_result(replica.lines) == ["logged", {"mean": 3, "spread": 5}]


def test_notebook_helper_under_another_name():
    ns = notebook("""
        def helper():
            return 1
        alias = helper
        def main():
            return alias()
        """)
    source = ship_function(ns["main"]).source
    assert "def helper" in source and "alias = helper" in source


@pytest.mark.parametrize(
    ("cell", "fn", "message"),
    [
        (
            "lr = 0.1\ndef train():\n    return lr * 2\n",
            "train",
            "train uses notebook variable 'lr': pass it as an argument or ship it in a module with files=[...]",
        ),
        ("lr = 0.1\ndef train(x, rate=lr):\n    return x\n", "train", "uses notebook variable 'lr'"),
        (
            "data = [1]\ndef helper():\n    return data\ndef train():\n    return helper()\n",
            "train",
            "helper uses notebook variable 'data'",
        ),
        (
            "class Model:\n    pass\ndef train():\n    return Model()\n",
            "train",
            "train uses class 'Model' defined in the notebook",
        ),
        (
            "def outer():\n    k = 2\n    def inner():\n        return k\n    return inner\ntrain = outer()\n",
            "train",
            "outer.<locals>.inner uses 'k' from the function it is defined in",
        ),
        ("train = lambda: 1\n", "train", "a lambda cannot be shipped"),
        ("async def train():\n    return 1\n", "train", "async function"),
        (
            "import functools\ndef f(a, b):\n    return a\ntrain = functools.partial(f, 1)\n",
            "train",
            "is a functools.partial",
        ),
        ("class C:\n    def m(self):\n        return 1\ntrain = C().m\n", "train", "is a bound method"),
    ],
)
def test_refusals_say_why_and_what_to_do(cell, fn, message):
    ns = notebook(cell)
    with pytest.raises(PayloadError) as caught:
        build_function_payload(ns[fn])
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_builtins_and_sourceless_functions_are_refused():
    with pytest.raises(PayloadError, match="is a builtin"):
        ship_function(len)
    with pytest.raises(PayloadError, match="not a Python function"):
        ship_function(functools.reduce.__class__)
    namespace = {"__name__": "__main__"}
    exec("def made_up():\n    return 1\n", namespace)  # no file, nothing in linecache
    with pytest.raises(PayloadError, match="source of made_up is not available"):
        ship_function(namespace["made_up"])


def test_unpicklable_or_notebook_arguments_are_refused(monkeypatch):
    with pytest.raises(PayloadError, match=r"argument 2 \(generator\) cannot be sent"):
        encode_arguments([1, (i for i in range(2))])
    with pytest.raises(PayloadError, match=r"argument key= \(_thread.lock\)"):
        encode_arguments([], {"key": __import__("threading").Lock()})
    main = types.ModuleType("__main__")
    exec("class Config:\n    pass\n", main.__dict__)
    monkeypatch.setitem(sys.modules, "__main__", main)  # as in a kernel: pickling by name works here
    with pytest.raises(PayloadError, match="Config defined in the notebook"):
        encode_arguments([main.Config()])
