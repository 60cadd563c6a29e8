"""Batching: concurrent calls of one signature run as one TensorFlow call, as TF Serving's batching does.

A signature can be batched when it is batch-major (:func:`is_batch_major`); the
loader gives each such signature of a version a :class:`Batcher`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .server_errors import ServingStatus

if TYPE_CHECKING:
    from tensorflow.core.protobuf import meta_graph_pb2


class Runner(Protocol):
    """What a Batcher calls: a loaded version's unbatched signature call."""

    def run_now(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def is_batch_major(signature: meta_graph_pb2.SignatureDef) -> bool:
    """Every input and output has a leading dimension of unknown size: requests can be stacked along it."""
    infos = list(signature.inputs.values()) + list(signature.outputs.values())
    return bool(signature.inputs) and all(
        not t.tensor_shape.unknown_rank and t.tensor_shape.dim and t.tensor_shape.dim[0].size == -1 for t in infos
    )


class _Call:
    __slots__ = ("done", "error", "inputs", "outputs", "wake")

    def __init__(self, inputs: dict[str, np.ndarray]):
        self.inputs, self.outputs, self.error, self.done = inputs, None, None, False
        # A lock created held, released to wake the caller: CPython's cheapest one-shot signal
        # (an Event builds a Condition and another lock per wait).
        self.wake = threading.Lock()
        self.wake.acquire()


class Batcher:
    """Concurrent calls of one batch-major signature run as one call, as TF Serving's batching does.

    The first caller leads: it runs a batch of whatever is queued, and callers
    arriving meanwhile queue for the next one. Per-call costs (Python, the
    TensorFlow call, which runs cold between requests) are then paid once per
    batch. A lone request never waits: only while the server is crowded (the
    previous batch had company, or calls arrived while it ran) does a leader wait
    up to ``timeout`` seconds for the batch to fill to ``max_batch`` (TF Serving's
    batch_timeout_micros and max_batch_size); under load that costs less latency
    than it saves. A batch that fails is re-run call by call, so that one bad
    input (a corrupt image) fails only its own request.
    """

    def __init__(self, version: Runner, signature: str, max_batch: int = 64, timeout: float = 0.001):
        self.version, self.signature, self.max_batch, self.timeout = version, signature, max_batch, timeout
        self._lock = threading.Lock()
        self._filled = threading.Condition(self._lock)
        self._queue: list[_Call] = []
        self._busy = False
        self._crowded = False  # the previous batch had company, or calls queued while it ran
        self._lingering = False

    def call(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        me = _Call(inputs)
        with self._lock:
            self._queue.append(me)
            lead = not self._busy
            self._busy = True
            if self._lingering and len(self._queue) >= self.max_batch:
                self._filled.notify()
        if not lead:
            me.wake.acquire()
        if not me.done:  # leading: run a batch (this call is first in the queue)
            self._run_batch()
        if me.error is not None:
            raise me.error
        return me.outputs

    def _run_batch(self) -> None:
        with self._lock:
            if self._crowded and self.timeout > 0 and len(self._queue) < self.max_batch:
                self._lingering = True
                self._filled.wait(self.timeout)
                self._lingering = False
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            self._crowded = len(batch) > 1
        try:
            self._execute(batch)
        except Exception as e:  # not one call's fault (e.g. stacking): every call still gets an answer
            for call in batch:
                if call.outputs is None and call.error is None:
                    call.error = e
        finally:
            for call in batch:
                call.done = True
            with self._lock:
                if self._queue:  # hand the lead to the next waiting call
                    self._crowded = True  # calls arrived while this batch ran
                    self._queue[0].wake.release()
                else:
                    self._busy = False
            for call in batch[1:]:  # the first is this thread's own call
                call.wake.release()

    def _execute(self, batch: list[_Call]) -> None:
        merged = _stack([c.inputs for c in batch]) if len(batch) > 1 else None
        if merged is not None:
            inputs, sizes = merged
            try:
                outputs = self.version.run_now(self.signature, inputs)
                parts = _split(outputs, sizes)
            except ServingStatus:
                parts = None  # find out which call is at fault: run them one by one
            if parts is not None:
                for call, part in zip(batch, parts, strict=True):
                    call.outputs = part
                return
        for call in batch:
            try:
                call.outputs = self.version.run_now(self.signature, call.inputs)
            except Exception as e:
                call.error = e


def _stack(calls: list[dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], list[int]] | None:
    """Inputs of several calls concatenated along dimension 0, or None when their shapes differ."""
    first = calls[0]
    for inputs in calls:
        if inputs.keys() != first.keys():
            return None
        for name, array in inputs.items():
            ref = first[name]
            if array.ndim == 0 or array.dtype != ref.dtype or array.shape[1:] != ref.shape[1:]:
                return None
    sizes = [next(iter(inputs.values())).shape[0] for inputs in calls]
    if any(a.shape[0] != size for inputs, size in zip(calls, sizes, strict=True) for a in inputs.values()):
        return None
    return {name: np.concatenate([inputs[name] for inputs in calls]) for name in first}, sizes


def _split(outputs: dict[str, np.ndarray], sizes: list[int]) -> list[dict[str, np.ndarray]] | None:
    total = sum(sizes)
    if any(v.ndim == 0 or v.shape[0] != total for v in outputs.values()):
        return None
    bounds = np.cumsum([0, *sizes])
    return [{name: v[bounds[i] : bounds[i + 1]] for name, v in outputs.items()} for i in range(len(sizes))]
