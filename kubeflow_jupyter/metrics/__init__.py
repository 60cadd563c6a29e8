"""Live training metrics of TFJobs: from replica logs and from TensorFlow event files.

- :func:`report` (:mod:`.report`, standard library only): a training script prints a record.
- :mod:`.grammar`: which log lines are records (the exact grammar), :class:`LogParser`.
- :mod:`.series`, :mod:`.table`: bounded series per (metric, replica), merged on step
  (:class:`MetricsTable`, :meth:`MetricsTable.to_frame`: a wide pandas DataFrame).
- :mod:`.events`: scalars from ``tf.summary`` / Keras event files, with TensorBoard's reader.
- :mod:`.follow`: :func:`collect` (a DataFrame now) and :class:`MetricsFollower` (live points)
  through ``TFJobClient.get`` / ``TFJobClient.logs``.
- :mod:`.live`: the Jupyter server's shared followers behind the sidebar's charts.
- :mod:`.tensorboard`: a TensorBoard per job, locally or as Kubeflow's ``Tensorboard``.

Importing this package imports the standard library only; pandas and TensorBoard load when a
frame or an event file is first asked for.
"""

from __future__ import annotations

from .grammar import LogParser, Record, parse_line
from .report import format_record, report

_LAZY = {
    "MetricsTable": ".table",
    "Point": ".table",
    "Series": ".series",
    "EventScalars": ".events",
    "collect": ".follow",
    "MetricsFollower": ".follow",
    "TensorBoard": ".tensorboard",
    "TensorBoardManager": ".tensorboard",
}

__all__ = ["LogParser", "Record", "format_record", "parse_line", "report", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)
