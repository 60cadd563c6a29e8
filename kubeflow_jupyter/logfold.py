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
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# The C++ sources of the start-up messages of TensorFlow 2.x (and its XLA/TSL parts): on any
# other source a glog line is the program's news (an op's warning, a rendezvous aborting).
_STARTUP_SOURCES = (
    "port",  # oneDNN custom operations are on
    "cudart_stub",  # Could not find cuda drivers
    "cuda_platform",  # failed call to cuInit (no GPU)
    "cuda_executor",
    "cuda_diagnostics",
    "cuda_dnn",  # Unable to register cuDNN factory
    "cuda_fft",
    "cuda_blas",
    "cpu_feature_guard",  # This TensorFlow binary is optimized to use ...
    "computation_placer",  # computation placer already registered
    "py_utils",  # TF-TRT Warning: Could not find TensorRT
    "gpu_device",  # Cannot dlopen some GPU libraries
)
_SOURCES = "|".join(_STARTUP_SOURCES)
_STARTUP_LINE = re.compile(
    # absl's notice before logging is initialised
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    # glog: I0000 00:00:1796100349.658140   10497 port.cc:153] ...
    rf"|[IWE]\d{{4}} [\d:.]+\s+\d+ (?:{_SOURCES})\.cc:\d+\]"
    # TensorFlow < 2.16: 2024-05-01 12:00:00.000000: I tensorflow/core/platform/cpu_feature_guard.cc:182] ...
    rf"|\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] \S*/(?:{_SOURCES})\.cc:\d+\]"
    # cpu_feature_guard's second line
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
)


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
