"""TensorFlow's C++ start-up lines, recognised and folded away in log views.

Every TensorFlow process prints them before it does anything (oneDNN, the CUDA probe, CPU
features, the XLA computation placer), on stderr, in glog's format. They are news to nobody,
yet in a replica's log or a cell they look like errors. :func:`fold_startup` turns each run
of them into one :class:`Fold` whose marker a view shows dim, with the raw lines kept for
whoever expands it; :func:`folded_html` is that view for an HTML ``<pre>``. Raw logs stay as
they are (``kubeflow-jupyter logs`` prints them unfolded); :func:`is_startup_line` is also
what :mod:`kubeflow_jupyter.extras` drops when it imports TensorFlow into a kernel.

Pure functions over strings: nothing is imported but the standard library.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# The patterns live in one file that the lab extension's log view reads too
# (labextension/src/tfStartupPatterns.json; in the wheel, kubeflow_jupyter/tf_startup_patterns.json):
# the C++ sources of TensorFlow 2.x's start-up messages (on any other source a glog line is the
# program's news: an op's warning, a rendezvous aborting) and the line shapes that name them.
_PATTERN_FILES = (
    Path(__file__).with_name("tf_startup_patterns.json"),  # installed from a wheel
    Path(__file__).parents[1] / "labextension" / "src" / "tfStartupPatterns.json",  # a checkout
)


def _load_patterns() -> tuple[tuple[str, ...], re.Pattern[str]]:
    for path in _PATTERN_FILES:
        if path.is_file():
            table = json.loads(path.read_text(encoding="utf-8"))
            sources = tuple(table["sources"])
            joined = "|".join(sources)
            return sources, re.compile("|".join(p.replace("{sources}", joined) for p in table["patterns"]))
    raise FileNotFoundError(f"TensorFlow start-up patterns not found in {', '.join(map(str, _PATTERN_FILES))}")


_STARTUP_SOURCES, _STARTUP_LINE = _load_patterns()


def is_startup_line(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's C++ start-up messages."""
    return _STARTUP_LINE.match(line.strip()) is not None


@dataclass(frozen=True)
class Fold:
    """A run of start-up lines, shown as its :attr:`marker` until expanded."""

    lines: tuple[str, ...]

    @property
    def marker(self) -> str:
        count = len(self.lines)
        return f"TensorFlow start-up messages ({count} line{'' if count == 1 else 's'})"


def fold_stream(lines: Iterable[str]) -> Iterator[str | Fold]:
    """:func:`fold_startup` for a live log: each line as it comes, a run of start-up lines held
    back until it ends (the next other line, or the end of the log) and yielded as one Fold."""
    run: list[str] = []
    for line in lines:
        if is_startup_line(line):
            run.append(line)
            continue
        if run:
            yield Fold(tuple(run))
            run = []
        yield line
    if run:
        yield Fold(tuple(run))


def fold_startup(lines: Iterable[str]) -> list[str | Fold]:
    """The lines in order, each run of TensorFlow start-up lines replaced by one :class:`Fold`."""
    return list(fold_stream(lines))


def fold_bundle(fold: Fold) -> dict[str, str]:
    """A display bundle for one fold in a cell's output (``display(bundle, raw=True)``): the dim
    marker that expands on click in JupyterLab, the marker in brackets as plain text."""
    return {"text/plain": f"[{fold.marker}]", "text/html": f'<pre style="margin:0">{folded_html(fold.lines)}</pre>'}


def folded_text(lines: Iterable[str]) -> list[str]:
    """Plain-text view: each fold as its marker in brackets (for a terminal or ``text/plain``)."""
    return [f"[{item.marker}]" if isinstance(item, Fold) else item for item in fold_startup(lines)]


def folded_html(lines: Iterable[str]) -> str:
    """The body of a ``<pre>``: lines escaped, each fold a ``<details>`` whose dim summary is its
    marker and whose body is the raw lines (a click on the marker shows them)."""
    parts: list[str] = []
    text: list[str] = []
    for item in fold_startup(lines):
        if isinstance(item, str):
            text.append(html.escape(item))
            continue
        if text:  # a <details> is a block: it starts its own line, no newline needed around it
            parts.append("\n".join(text))
            text = []
        raw = html.escape("\n".join(item.lines))
        parts.append(
            '<details class="kfj-fold" style="display:block">'
            '<summary style="opacity:0.6;cursor:pointer;font-style:italic" '
            f'title="click to show the raw lines">{html.escape(item.marker)}</summary>{raw}</details>'
        )
    if text:
        parts.append("\n".join(text))
    return "".join(parts)
