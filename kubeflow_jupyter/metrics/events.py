"""Scalars from TensorFlow event files under a logdir, read incrementally with TensorBoard's reader.

``tf.summary.scalar`` and Keras's ``TensorBoard`` callback write ``*.tfevents.*`` files
(TFRecord files of ``Event`` protos). :class:`EventScalars` keeps one open record reader per
file and each :meth:`~EventScalars.poll` returns only the scalars appended since the last one,
so a file is read once however often it is polled; a record still being written is read on a
later poll (the reader keeps the partial record).

The reader is TensorBoard's own (``tensorboard.compat.tensorflow_stub``'s ``PyRecordReader``,
the one TensorBoard uses when TensorFlow is absent, and its ``Event`` proto): asking
``tensorboard.compat`` for a reader would import TensorFlow (seconds, and a gigabyte in the
Jupyter server's process) and pins that choice for the whole process.

Names: a scalar tag in a file directly under the logdir is the metric's name (``val_loss``);
in a subdirectory (a TensorBoard *run*), the run's path prefixes it: Keras's callback writes
``train/epoch_loss`` and ``validation/epoch_loss``. A run whose first directory is a replica
id (``worker-1/...``) belongs to that replica (:func:`split_run`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: Directory levels searched below the logdir (Keras writes two: ``train/``, ``validation/``).
MAX_DEPTH = 6
#: Event files followed at once (each holds an open file).
MAX_FILES = 256


@dataclass(frozen=True)
class Scalar:
    run: str  # the file's directory relative to the logdir, "" for the logdir itself
    tag: str
    step: int
    value: float

    @property
    def name(self) -> str:
        return f"{self.run}/{self.tag}" if self.run else self.tag


def split_run(run: str, replicas: Iterable[str]) -> tuple[str | None, str]:
    """(replica, rest of the run) when the run's first directory names one of ``replicas``."""
    head, _, rest = run.partition("/")
    return (head, rest) if head and head in set(replicas) else (None, run)


def _tensorboard():
    from ..extras import check

    check("tensorboard", feature="reading event-file scalars (tf.summary, Keras's TensorBoard callback)")
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow
    from tensorboard.util import tensor_util

    return event_pb2, errors, pywrap_tensorflow, tensor_util


class _EventFile:
    def __init__(self, path: Path, run: str):
        _, _, pywrap, _ = _tensorboard()
        self.run = run
        self.reader = pywrap.PyRecordReader_New(os.fsencode(path), 0, b"", None)
        #: tags whose summary metadata said "scalars" (TF writes the metadata with a tag's values)
        self.scalar_tags: set[str] = set()

    def read(self) -> list[Scalar]:
        event_pb2, errors, _, tensor_util = _tensorboard()
        out: list[Scalar] = []
        while True:
            try:
                self.reader.GetNext()
            except errors.OutOfRangeError:  # the end, or a record not fully written yet
                return out
            except errors.DataLossError:  # a corrupt record: what came before stands
                return out
            event = event_pb2.Event.FromString(self.reader.record())
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                number = self._scalar(value, tensor_util)
                if number is not None and math.isfinite(number):
                    out.append(Scalar(self.run, value.tag, int(event.step), number))

    def _scalar(self, value, tensor_util) -> float | None:
        kind = value.WhichOneof("value")
        if kind == "simple_value":  # TF1's tf.summary and tf.compat.v1
            return float(value.simple_value)
        if kind != "tensor":
            return None
        plugin = value.metadata.plugin_data.plugin_name
        if plugin == "scalars":
            self.scalar_tags.add(value.tag)
        elif plugin or value.tag not in self.scalar_tags:
            return None
        array = tensor_util.make_ndarray(value.tensor)
        if array.size != 1 or array.dtype.kind not in "fiub":
            return None
        return float(array.reshape(()))

    def close(self) -> None:
        handle = getattr(self.reader, "file_handle", None)
        if handle is not None:
            handle.close()


class EventScalars:
    """The scalars of every event file under ``logdir``, incrementally: see the module docstring."""

    def __init__(self, logdir: str | os.PathLike):
        self.logdir = Path(logdir)
        self._files: dict[Path, _EventFile] = {}

    def poll(self) -> list[Scalar]:
        """Scalars written since the last poll (new files are found on each poll), oldest file first."""
        for path in self._find():
            if path not in self._files and len(self._files) < MAX_FILES:
                run = path.parent.relative_to(self.logdir).as_posix()
                try:
                    self._files[path] = _EventFile(path, "" if run == "." else run)
                except OSError:
                    continue
        out: list[Scalar] = []
        for file in self._files.values():
            out.extend(file.read())
        return out

    def _find(self) -> list[Path]:
        found: list[tuple[float, Path]] = []
        base_depth = len(self.logdir.parts)
        for root, dirs, files in os.walk(self.logdir):
            if len(Path(root).parts) - base_depth >= MAX_DEPTH:
                dirs[:] = []
            dirs.sort()
            for name in files:
                if ".tfevents." in name:
                    path = Path(root, name)
                    try:
                        found.append((path.stat().st_mtime, path))
                    except OSError:
                        continue
        return [path for _, path in sorted(found, key=lambda item: (item[0], str(item[1])))]

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()

    def __enter__(self) -> EventScalars:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
