"""The log-metrics grammar: which replica log lines are metrics records, and an incremental parser.

A line is a **record** when it holds a *step pair* and at least one *metric pair*
(Katib's StdOut collector convention, ``name=value``, with a step)::

    step pair    (step|epoch) ( \\s*=\\s* | one or more spaces ) INT [ "/" INT ]
    metric pair  NAME \\s*=\\s* NUMBER
    NAME         [A-Za-z_][A-Za-z0-9_./-]{0,63}      case-sensitive, ASCII
    INT          [0-9]{1,18}                          no sign, no fraction
    NUMBER       [+-]? ( DIGITS [ "." DIGITS? ] | "." DIGITS ) [ [eE] [+-]? DIGITS ]

- A pair starts at the beginning of the line or after a character that cannot be part of a
  name (so ``chief-0: step=3`` holds ``step=3``, and ``mystep=3`` is the metric ``mystep``).
- A pair ends at the end of the line, at white space or at one of ``, ; ) ] } |``: so
  ``loss=0.0370,`` is 0.037, while ``loss=0.5%``, ``lr=1e-3x``, ``v=1.2.3`` and
  ``loss=nan`` are not numbers (a non-finite value, NaN, ±inf or an overflow, is no point).
- The x value is the first ``step`` pair, else the first ``epoch`` pair. ``step 26/120``
  (no ``=``, with the total) counts too: ``chief-0: step 26/120 loss=0.0370`` is a record at
  step 26. Other pairs named like the x key are ignored; ``epoch=`` on a ``step`` line is a
  metric named ``epoch``.
- A metric named twice on one line: the last value wins. A line longer than
  :data:`MAX_LINE` characters is not read (it cannot be a record a person wrote).

``kubeflow_jupyter.metrics.report(step, **metrics)`` prints exactly such lines.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

MAX_LINE = 8192
STEP_KEYS = ("step", "epoch")

_BEFORE = r"(?<![A-Za-z0-9_./-])"
_AFTER = r"(?=$|[\s,;)\]}|])"
STEP_PAIR = re.compile(_BEFORE + r"(?P<key>step|epoch)(?:\s*=\s*| +)(?P<n>[0-9]{1,18})(?:/[0-9]{1,18})?" + _AFTER)
METRIC_PAIR = re.compile(
    _BEFORE
    + r"(?P<name>[A-Za-z_][A-Za-z0-9_./-]{0,63})\s*=\s*"
    + r"(?P<value>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    + _AFTER
)


@dataclass(frozen=True)
class Record:
    """One metrics record: ``values`` at ``step`` (``key`` says whether it counted steps or epochs)."""

    step: int
    values: dict[str, float]
    key: str = "step"


def parse_line(line: str) -> Record | None:
    """The record a log line holds, or None (see the module docstring for the grammar)."""
    if len(line) > MAX_LINE or "=" not in line:
        return None
    found = {}
    for match in STEP_PAIR.finditer(line):
        found.setdefault(match["key"], int(match["n"]))
    key = next((k for k in STEP_KEYS if k in found), None)
    if key is None:
        return None
    values: dict[str, float] = {}
    for match in METRIC_PAIR.finditer(line):
        name = match["name"]
        if name == key:
            continue
        value = float(match["value"])
        if math.isfinite(value):
            values[name] = value
        else:
            values.pop(name, None)  # the last value wins, and this one is no number
    if not values:
        return None
    return Record(found[key], values, key)


@dataclass
class LogParser:
    """Records from a log that arrives in pieces: whole lines (:meth:`feed_line`) or arbitrary
    chunks (:meth:`feed`, which keeps an unfinished last line until its end arrives).

    It never looks back: each character is read once, and ``offset`` says how many characters
    of complete lines it has consumed, so a reader can resume a file from there.
    """

    offset: int = 0
    lines: int = 0
    _partial: list[str] = field(default_factory=list)
    _partial_size: int = 0

    def feed_line(self, line: str) -> Record | None:
        self.offset += len(line) + 1
        self.lines += 1
        return parse_line(line.rstrip("\r\n"))

    def feed(self, chunk: str) -> list[Record]:
        records = []
        start = 0
        while (end := chunk.find("\n", start)) != -1:
            piece = chunk[start:end]
            if self._partial:
                # A line too long to be a record is not kept whole: only its length counts.
                if self._partial_size <= MAX_LINE:
                    piece = "".join(self._partial) + piece
                else:
                    piece = "x" * (MAX_LINE + 1)
                size = self._partial_size + (end - start)
                self._partial, self._partial_size = [], 0
            else:
                size = end - start
            record = parse_line(piece.rstrip("\r"))
            self.offset += size + 1
            self.lines += 1
            if record is not None:
                records.append(record)
            start = end + 1
        if start < len(chunk):
            rest = chunk[start:]
            if self._partial_size <= MAX_LINE:
                self._partial.append(rest)
            self._partial_size += len(rest)
        return records

    def finish(self) -> list[Record]:
        """The log ended: its last line, if it had no newline."""
        if not self._partial_size:
            return []
        records = self.feed("\n")
        self.offset -= 1  # the newline was ours, not the log's
        return records
