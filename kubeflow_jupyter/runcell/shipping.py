"""Shipping a Python function by source, with what it needs, and its arguments.

``ship_function(fn)`` builds the ``code.py`` a replica runs: the function's own source
(``inspect.getsource``, dedented), preceded by what the function uses from outside, found
in its code (the global names it loads, through nested functions and comprehensions, plus
the names in its decorators, default values and evaluated annotations):

- a module → ``import numpy as np``;
- a function or class of an importable module (not ``__main__``) → ``from mod import name``;
  the module must exist on the replica too: in the image, installed with ``packages=`` or
  shipped with ``files=``;
- a value of the function's own module, when that module is importable → ``from mod import
  name`` (same condition);
- another function defined in the notebook (``__main__``) → its source too, by the same rules;
- anything else of the notebook — a variable, a class defined in a cell (its source is not
  reliably available) — is refused: pass it as an argument, or put it in a module shipped
  with ``files=[...]``.

Refused with one line saying why and what to do: lambdas, closures over a function's local
variables, builtins, bound methods, partials, async functions, functions whose source is not
available. Arguments travel as JSON when exact (see frames.json_exact), else by the standard
pickle (cloudpickle is not in the job's image), refusing what does not pickle or what refers
to classes of the notebook's ``__main__``, which the replica cannot import.
"""

from __future__ import annotations
import __future__

import ast
import base64
import builtins
import dis
import functools
import inspect
import sys
import textwrap
import types
from dataclasses import dataclass

from . import frames
from .errors import PayloadError

_MISSING = object()
_GLOBAL_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})


@dataclass(frozen=True)
class ShippedFunction:
    name: str  # the name code.py binds the function to
    source: str  # the whole code.py: imports, the notebook helpers it uses, the function


def ship_function(fn) -> ShippedFunction:
    """The code that defines ``fn`` on a replica; raises PayloadError when it cannot be shipped."""
    target = _python_function(fn)
    shipper = _Shipper()
    shipper.add_function(target, target.__name__)
    return ShippedFunction(target.__name__, shipper.code())


def _label(fn) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _python_function(fn) -> types.FunctionType:
    label = _label(fn)
    if isinstance(fn, functools.partial):
        raise PayloadError(
            f"{label!r} is a functools.partial, which cannot be shipped: pass the function "
            "and its arguments to run() instead"
        )
    if inspect.ismethod(fn):
        raise PayloadError(
            f"{label} is a bound method, which cannot be shipped: ship a function defined "
            "with def at the top level and pass the object as an argument"
        )
    if isinstance(fn, types.BuiltinFunctionType | types.WrapperDescriptorType | types.MethodDescriptorType):
        raise PayloadError(
            f"{label} is a builtin, which has no Python source: call it from a function defined with def"
        )
    try:
        target = inspect.unwrap(fn)
    except ValueError:
        target = fn
    if not inspect.isfunction(target):
        raise PayloadError(f"{fn!r} is not a Python function: pass a function defined with def")
    if target.__name__ == "<lambda>":
        raise PayloadError(
            "a lambda cannot be shipped (its source is part of another line): define the function with def"
        )
    if target.__closure__:
        names = ", ".join(repr(n) for n in target.__code__.co_freevars)
        raise PayloadError(
            f"{target.__qualname__} uses {names} from the function it is defined in, which "
            "cannot be shipped: define it at the top level and pass those as arguments"
        )
    if inspect.iscoroutinefunction(target):
        raise PayloadError(
            f"{target.__qualname__} is an async function: ship a def function that calls asyncio.run(...)"
        )
    return target


def _source_of(target: types.FunctionType) -> tuple[str, ast.FunctionDef]:
    name = target.__qualname__
    try:
        source = textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError) as exc:
        raise PayloadError(
            f"the source of {name} is not available ({exc}): define it in a notebook cell or a .py file"
        ) from None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        tree = None
    node = tree.body[0] if tree is not None and tree.body else None
    if not isinstance(node, ast.FunctionDef) or node.name != target.__name__:
        raise PayloadError(
            f"the source of {name} could not be isolated from the lines around it: define it "
            "with def on lines of its own"
        )
    return source.rstrip() + "\n", node


def _code_globals(code: types.CodeType) -> set[str]:
    names = {ins.argval for ins in dis.get_instructions(code) if ins.opname in _GLOBAL_LOADS}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_globals(const)
    return names


def _header_names(node: ast.FunctionDef, annotations_evaluated: bool) -> set[str]:
    """Names evaluated when the ``def`` itself runs: decorators, defaults, annotations."""
    roots: list[ast.AST] = [*node.decorator_list, *node.args.defaults]
    roots += [d for d in node.args.kw_defaults if d is not None]
    if annotations_evaluated:
        arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg, node.args.kwarg]
        roots += [a.annotation for a in arguments if a is not None and a.annotation is not None]
        if node.returns is not None:
            roots.append(node.returns)
    return {n.id for root in roots for n in ast.walk(root) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _importable(value, name: str) -> tuple[str, str] | None:
    """(module, path in it) by which the replica can import ``value``; None if not by name."""
    module_name = getattr(value, "__module__", None)
    if not isinstance(module_name, str) or module_name == "__main__":
        return None
    module = sys.modules.get(module_name)
    if module is None:
        return None
    qualname = getattr(value, "__qualname__", None)
    if isinstance(qualname, str) and "<locals>" not in qualname:
        found = module
        for part in qualname.split("."):
            found = getattr(found, part, _MISSING)
        if found is value:
            return module_name, qualname
    if getattr(module, name, _MISSING) is value:
        return module_name, name
    return None


class _Shipper:
    def __init__(self):
        self.imports: list[str] = []
        self.definitions: list[str] = []
        self.visiting: set[int] = set()
        self.future_annotations = False

    def code(self) -> str:
        head = ["from __future__ import annotations\n"] if self.future_annotations else []
        imports = "".join(line + "\n" for line in self.imports)
        return "\n\n".join(part for part in [*head, imports, *self.definitions] if part)

    def _import(self, line: str) -> None:
        if line not in self.imports:
            self.imports.append(line)

    def add_function(self, target: types.FunctionType, bound_name: str) -> None:
        if id(target) in self.visiting:
            return  # recursion (direct or mutual): names resolve when called
        self.visiting.add(id(target))
        source, node = _source_of(target)
        deferred = bool(target.__code__.co_flags & __future__.annotations.compiler_flag)
        self.future_annotations |= deferred
        names = _code_globals(target.__code__) | _header_names(node, not deferred)
        for name in sorted(names):
            self._resolve(name, target)
        self.definitions.append(source)
        if bound_name != target.__name__:
            self.definitions.append(f"{bound_name} = {target.__name__}\n")

    def _resolve(self, name: str, user: types.FunctionType) -> None:
        scope = user.__globals__
        if name not in scope:
            return  # a builtin, or a NameError there as here
        value = scope[name]
        if value is user:
            return
        home = scope.get("__name__")
        who = user.__qualname__
        if isinstance(value, types.ModuleType):
            if value.__name__ == "__main__":
                raise PayloadError(f"{who} uses the notebook's __main__ module as {name!r}, which cannot be shipped")
            self._import(f"import {value.__name__}" if value.__name__ == name else f"import {value.__name__} as {name}")
            return
        if getattr(builtins, name, _MISSING) is value:
            return
        try:
            inner = inspect.unwrap(value) if callable(value) else value
        except ValueError:
            inner = value
        if inspect.isfunction(inner) and inner.__module__ == "__main__":
            self.add_function(_python_function(value), name)
            return
        if inspect.isclass(value) and value.__module__ == "__main__":
            raise PayloadError(
                f"{who} uses class {name!r} defined in the notebook, whose source cannot be shipped: "
                "define it in a module shipped with files=[...] and import it there"
            )
        origin = _importable(value, name)
        if (
            origin is None
            and isinstance(home, str)
            and home != "__main__"
            and home in sys.modules
            and getattr(sys.modules[home], name, _MISSING) is value
        ):
            origin = (home, name)
        if origin is None:
            where = "notebook variable" if home == "__main__" else f"variable of {home}"
            raise PayloadError(
                f"{who} uses {where} {name!r}: pass it as an argument or ship it in a module with files=[...]"
            )
        module, path = origin
        if "." not in path:
            self._import(f"from {module} import {path}" + (f" as {name}" if path != name else ""))
        else:  # a nested class: import its outer class's module, then walk
            self._import(f"{name} = __import__({module!r}, fromlist=['_']).{path}")


# --- arguments ---------------------------------------------------------------------------------


def encode_arguments(args=(), kwargs=None) -> dict:
    """``run.json``'s ``arguments``: ``{"encoding": "json"|"pickle", "value": ...}``."""
    args = list(args)
    kwargs = dict(kwargs or {})
    if frames.json_exact(args) and frames.json_exact(kwargs):
        return {"encoding": "json", "value": [args, kwargs]}
    try:
        data, main_refs = frames.checked_pickle((args, kwargs))
    except Exception:
        _explain_unpicklable(args, kwargs)
        raise  # not reached: the loop above finds the culprit
    if main_refs:
        names = ", ".join(main_refs[:3])
        raise PayloadError(
            f"the arguments use {names} defined in the notebook, which the replicas cannot "
            "import: define it in a module shipped with files=[...]"
        )
    return {"encoding": "pickle", "value": base64.b64encode(data).decode("ascii")}


def _explain_unpicklable(args: list, kwargs: dict) -> None:
    labelled = [(f"argument {i + 1}", a) for i, a in enumerate(args)] + [
        (f"argument {k}=", v) for k, v in kwargs.items()
    ]
    for label, value in labelled:
        try:
            frames.checked_pickle(value)
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise PayloadError(
                f"{label} ({frames.type_name(value)}) cannot be sent to the replicas ({why}): "
                "arguments must be JSON or picklable"
            ) from None
    raise PayloadError("the arguments cannot be pickled: arguments must be JSON or picklable")


def describe_call(name: str, args=(), kwargs=None, width: int = 80) -> str:
    """``train(10, lr=0.1)``: a run-job's description in list views."""
    parts = [frames.safe_repr(a) for a in args] + [f"{k}={frames.safe_repr(v)}" for k, v in (kwargs or {}).items()]
    text = f"{name}({', '.join(parts)})"
    return text if len(text) <= width else text[: width - 1] + "…"
