"""``report(step, **metrics)``: print one metrics record to stdout, in the grammar of :mod:`.grammar`.

Standard library only, so a training script can import it in any image that has the package;
it is also small enough to copy into a script that does not.
"""

from __future__ import annotations

import math
import operator
import re
import sys

#: What :mod:`.grammar` accepts as a metric name (kept here too: this module imports nothing of ours).
NAME = re.compile(r"[A-Za-z_][\w./-]{0,63}", re.ASCII)
STEP_KEYS = ("step", "epoch")


def format_value(value: object) -> str:
    """An int as itself, anything else as the shortest text that reads back as the same float."""
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"a metric value must be a number, not {type(value).__name__}")
    if isinstance(value, int):
        return str(value)
    try:
        index = operator.index(value)  # numpy integers
    except TypeError:
        pass
    else:
        return str(index)
    number = float(value)  # numpy floats, 0-d arrays and tensors convert; a string raises
    return repr(number) if math.isfinite(number) else str(number)


def format_record(step: int, metrics: dict[str, object]) -> str:
    """The line :func:`report` prints, e.g. ``step=26 loss=0.037 accuracy=0.91``."""
    step = operator.index(step)
    if step < 0:
        raise ValueError(f"step must be a non-negative integer, got {step}")
    if not metrics:
        raise ValueError("report at least one metric, e.g. report(step, loss=loss)")
    parts = [f"step={step}"]
    for name, value in metrics.items():
        if name in STEP_KEYS[:1] or not NAME.fullmatch(name):
            raise ValueError(
                f"metric name {name!r:.70}: a letter or _, then up to 63 letters, digits or _ . / - (and not 'step')"
            )
        parts.append(f"{name}={format_value(value)}")
    return " ".join(parts)


def report(step: int, /, **metrics: object) -> None:
    """Print ``step=<step> name=value ...`` and flush, so the notebook sees it at once.

    ``report(26, loss=0.037, accuracy=0.91)`` prints ``step=26 loss=0.037 accuracy=0.91``.
    Values are ints or anything ``float()`` takes (numpy scalars, 0-d tensors). A NaN or
    infinite value is printed (``loss=nan``) but is not a number in the grammar, so the
    metric has no point at that step.
    """
    print(format_record(step, metrics), file=sys.stdout, flush=True)
