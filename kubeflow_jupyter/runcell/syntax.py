"""Is a cell plain Python? Checked in the notebook, before anything is created.

A replica runs the cell with plain Python (the image has no IPython, and ``get_ipython()``
means nothing there), so IPython syntax — ``%magic``, ``%%cell magic``, ``!shell``,
``a = !cmd``, ``obj?``, pasted ``>>>`` prompts — is *refused* with one line naming the line,
rather than transformed: a transformed ``%time`` or ``!pip`` would call ``get_ipython()`` and
fail on the replica anyway, and silently dropping it would run different code than written.

IPython's own ``TransformerManager`` says which lines IPython would rewrite, so the check
matches what the notebook itself accepts (a ``%`` inside a string is fine). It is imported
here, where the notebook builds the payload; the replicas never import this module. Without
IPython (a plain script calling ``TFJobClient.run``), only Python's own parser checks the code.
"""

from __future__ import annotations

import ast
import difflib

from .errors import PayloadError


def _ipython_rewrites(code: str) -> tuple[int, str] | None:
    """(1-based line number, text) of the first line IPython would rewrite, or None."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return None
    try:
        transformed = TransformerManager().transform_cell(code)
    except Exception:  # its tokenizer gives up: Python's parser reports the problem below
        return None
    original = [line.rstrip() for line in code.splitlines()]
    skipped = 0
    while skipped < len(original) and not original[skipped]:
        skipped += 1  # IPython drops leading blank lines: not a rewrite
    rewritten = [line.rstrip() for line in transformed.splitlines()]
    while rewritten and not rewritten[-1]:
        rewritten.pop()
    body = original[skipped:]
    while body and not body[-1]:
        body.pop()
    if body == rewritten:
        return None
    matcher = difflib.SequenceMatcher(a=body, b=rewritten, autojunk=False)
    for tag, i1, _i2, _j1, _j2 in matcher.get_opcodes():
        if tag != "equal":
            index = min(i1, len(body) - 1)
            return skipped + index + 1, body[index].strip()
    return None


def check_cell(code: str) -> ast.Module:
    """The cell's AST; PayloadError when ``code`` is empty, uses IPython syntax, or is not valid Python."""
    if not code.strip():
        raise PayloadError("the cell is empty: there is nothing to run")
    rewrite = _ipython_rewrites(code)
    if rewrite is not None:
        lineno, text = rewrite
        raise PayloadError(
            f"line {lineno}: {text!r} is IPython syntax, which does not run on the replicas "
            "(plain Python there): use Python (e.g. subprocess.run for a shell command)"
        )
    try:
        return ast.parse(code, "<cell>")
    except SyntaxError as exc:
        text = (exc.text or "").strip()
        where = f"line {exc.lineno}: " if exc.lineno else ""
        raise PayloadError(f"{where}{exc.msg}" + (f": {text!r}" if text else "")) from None


def value_line(code: str, tree: ast.Module) -> int | None:
    """Where the cell's value starts, for the runner (run.json's ``value_line``): the line of its
    last statement when that is an expression not followed by ``;`` (IPython's rule) and starts
    its line; 0 when the cell has no value; None when the expression follows another statement on
    its line (``x = 1; x``): the runner then parses the cell itself."""
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return 0
    node = tree.body[-1]
    lines = code.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # the parser's lines
    after = lines[node.end_lineno - 1].encode("utf-8")[node.end_col_offset :].decode("utf-8", "replace")
    if after.lstrip().startswith(";"):
        return 0
    return node.lineno if node.col_offset == 0 else None
