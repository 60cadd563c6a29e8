"""The model server's core, transport-free: versions on disk, lookup, and the four APIs.

A model is a base directory of integer version subdirectories, each a SavedModel
(``BASE/1/saved_model.pb``), TF Serving's layout. Every version on disk is
loaded (TF Serving's ``all`` version policy) and a poller picks up new and removed
version directories without a restart. Lookup follows TF Serving's ServerCore:
no version -> ``Latest(name)``, a version -> ``Specific(name, N)``, a version
label -> the version it names; errors carry TF Serving's codes and messages.

A version is loaded the way TF Serving loads it (``SessionBundle``): the ``serve``
meta graph in a TensorFlow session, variables filled by the saver's restore op,
signatures run by tensor name. That is also the fast way: one session call costs a
fraction of a TF2 function call. An export whose variables that restore op does not
fill (TF Serving would answer "Could not find variable") is still served, through
``tf.saved_model.load``, and the server says why.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from . import tensors

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
INIT_OP_SIGNATURE = "__saved_model_init_op"  # TF2's init op, listed among the signatures but not one to call
SERVE_TAG = "serve"
CLASSIFY_INPUTS = "inputs"
CLASSIFY_CLASSES = "classes"
CLASSIFY_SCORES = "scores"
REGRESS_OUTPUTS = "outputs"


class ServingStatus(Exception):
    """A failed request: gRPC status name (``"NOT_FOUND"``) and TF Serving's message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> ServingStatus:
    return ServingStatus("INVALID_ARGUMENT", message)


@dataclass
class Version:
    """One version directory: its state and, once loaded, its signatures."""

    number: int
    path: Path
    state: str = "LOADING"  # LOADING | AVAILABLE | END (load failed or removed)
    error: str = ""
    signature_defs: dict[str, meta_graph_pb2.SignatureDef] = field(default_factory=dict)
    bundle: "SessionBundle | None" = None  # TF Serving's way; None when the export needs TF2's loader
    functions: dict[str, Callable] = field(default_factory=dict)  # TF2's loader: the signatures as functions
    loaded: Any = None  # the tf.saved_model.load object: keeps the variables alive
    callable: frozenset[str] = frozenset()  # the signatures that can be run
    facts: dict[str, "SignatureFacts"] = field(default_factory=dict)  # per signature, read once from the protos
    stamp: float = 0.0  # mtime of saved_model.pb when it was loaded
    batchers: dict[str, "Batcher"] = field(default_factory=dict)  # per batch-major signature, when batching

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Call one signature (batched with concurrent calls when it is batch-major)."""
        batcher = self.batchers.get(signature)
        if batcher is not None:
            return batcher.call(inputs)
        return self.run_now(signature, inputs)

    def run_now(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Call one signature; TensorFlow's errors become TF Serving statuses."""
        import tensorflow as tf

        try:
            if self.bundle is not None:
                return self.bundle.run(signature, self.signature_defs[signature], inputs)
            outputs = self.functions[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.OpError as e:
            raise ServingStatus(_grpc_code_name(e.error_code), e.message) from None
        except (TypeError, ValueError) as e:
            raise invalid(str(e)) from None
        return {k: v.numpy() for k, v in outputs.items()}


class SessionBundle:
    """A SavedModel as TF Serving's SavedModelBundle holds it: a session over the ``serve`` meta graph.

    Each (signature, fed inputs) pair gets one session callable, made on first use:
    feeds and fetches are the signature's tensor names, as TF Serving's Session::Run
    gets them. With ``inline`` the graph runs in the calling thread (requests already
    run side by side), which spares a thread hand-off per op.
    """

    def __init__(self, session, inline: bool):
        self.session = session
        self.inline = inline
        self._callables: dict[tuple, tuple[list[str], Callable]] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> "SessionBundle":
        """Load ``path``; ``UnrestoredVariables`` when TF Serving's steps leave variables empty."""
        import tensorflow as tf

        intra = tf.config.threading.get_intra_op_parallelism_threads()
        inter = tf.config.threading.get_inter_op_parallelism_threads()
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=intra, inter_op_parallelism_threads=inter,
                                          allow_soft_placement=True)
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph, config=config)
        try:
            from tensorflow.python.util import deprecation

            # TF Serving's loader is TF1's; its "deprecated" notice would greet every load.
            with graph.as_default(), deprecation.silence():
                meta_graph = tf.compat.v1.saved_model.loader.load(session, [SERVE_TAG], str(path))
                saver = meta_graph.saver_def
                checkpoint = path / "variables" / "variables"
                # A TF2 export lists no variables in the graph's collections, so the Python loader
                # skips the restore op; TF Serving's C++ loader runs it whenever the saver has one.
                if saver.restore_op_name and not tf.compat.v1.global_variables() and \
                        checkpoint.with_suffix(".index").exists():
                    session.run(saver.restore_op_name, {saver.filename_tensor_name: str(checkpoint)})
                missing = _uninitialized_variables(session, graph, meta_graph.signature_def)
        except BaseException:
            session.close()
            raise
        if missing:
            session.close()
            raise UnrestoredVariables(missing)
        return cls(session, inline=inter == 0)

    def run(self, name: str, signature: meta_graph_pb2.SignatureDef, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        fed = tuple(sorted(inputs))
        entry = self._callables.get((name, fed))
        if entry is None:
            entry = self._make_callable(name, signature, fed)
        outputs, call = entry
        return dict(zip(outputs, call(*[inputs[alias] for alias in fed])))

    def _make_callable(self, name: str, signature: meta_graph_pb2.SignatureDef, fed: tuple[str, ...]):
        from tensorflow.core.protobuf import config_pb2

        with self._lock:
            entry = self._callables.get((name, fed))
            if entry is None:
                outputs = sorted(signature.outputs)
                options = config_pb2.CallableOptions(feed=[signature.inputs[alias].name for alias in fed],
                                                     fetch=[signature.outputs[alias].name for alias in outputs])
                if self.inline:
                    options.run_options.inter_op_thread_pool = -1  # the caller's thread
                # The public make_callable with feeds goes through Session.run's Python
                # argument handling on every call; this is the C++ callable behind it.
                entry = outputs, self.session._make_callable_from_options(options)
                self._callables[(name, fed)] = entry
        return entry


class UnrestoredVariables(Exception):
    """The saver's restore op leaves these variables empty: TF Serving would fail on the first request."""

    def __init__(self, names: list[str]):
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        super().__init__(f"its restore op leaves {len(names)} variable(s) empty ({shown}); TF Serving would answer "
                         f"'Could not find variable {names[0]}'. A Keras 3 model saved inside a tf.Module needs "
                         "its tf.Variables tracked by the module (kubeflow_jupyter.serving.export does this)")
        self.names = names


def _uninitialized_variables(session, graph, signatures) -> list[str]:
    """Resource variables the signatures read that hold no value (checked without running a signature)."""
    import tensorflow as tf

    pending = [graph.get_operation_by_name(info.name.split(":")[0]) for name, signature in signatures.items()
               if name != INIT_OP_SIGNATURE for info in signature.outputs.values()]
    seen, handles = set(), []
    while pending:  # everything the outputs depend on
        op = pending.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.type == "VarHandleOp":
            handles.append(op)
        pending.extend(tensor.op for tensor in op.inputs)
        pending.extend(op.control_inputs)
    if not handles:
        return []
    with graph.as_default(), tf.name_scope("kubeflow_jupyter_check"):
        flags = session.run([tf.raw_ops.VarIsInitializedOp(resource=op.outputs[0]) for op in handles])
    return [op.get_attr("shared_name").decode() or op.name for op, ok in zip(handles, flags) if not ok]


def is_batch_major(signature: meta_graph_pb2.SignatureDef) -> bool:
    """Every input and output has a leading dimension of unknown size: requests can be stacked along it."""
    tensors_ = list(signature.inputs.values()) + list(signature.outputs.values())
    return bool(signature.inputs) and all(
        not t.tensor_shape.unknown_rank and t.tensor_shape.dim and t.tensor_shape.dim[0].size == -1 for t in tensors_)


class _Call:
    __slots__ = ("inputs", "outputs", "error", "done", "wake")

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

    def __init__(self, version: "Version", signature: str, max_batch: int = 64, timeout: float = 0.001):
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
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch:]
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
                for call, part in zip(batch, parts):
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
    if any(a.shape[0] != size for inputs, size in zip(calls, sizes) for a in inputs.values()):
        return None
    return {name: np.concatenate([inputs[name] for inputs in calls]) for name in first}, sizes


def _split(outputs: dict[str, np.ndarray], sizes: list[int]) -> list[dict[str, np.ndarray]] | None:
    total = sum(sizes)
    if any(v.ndim == 0 or v.shape[0] != total for v in outputs.values()):
        return None
    bounds = np.cumsum([0] + sizes)
    return [{name: v[bounds[i]:bounds[i + 1]] for name, v in outputs.items()} for i in range(len(sizes))]


def _grpc_code_name(code: int) -> str:
    import grpc

    for status in grpc.StatusCode:
        if status.value[0] == code:
            return status.name
    return "UNKNOWN"


def version_dirs(base: Path) -> dict[int, Path]:
    """Integer-named subdirectories holding a saved_model.pb (partly written ones are skipped)."""
    found = {}
    try:
        entries = list(os.scandir(base))
    except OSError:
        return {}
    for entry in entries:
        if entry.is_dir() and entry.name.isdigit() and _saved_model_file(Path(entry.path)):
            found[int(entry.name)] = Path(entry.path)
    return found


def _saved_model_file(path: Path) -> Path | None:
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        if (path / name).is_file():
            return path / name
    return None


def read_signature_defs(path: Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs of the meta graph tagged ``serve``, as TF Serving reads them."""
    from google.protobuf import text_format

    pb = _saved_model_file(path)
    model = saved_model_pb2.SavedModel()
    if pb.suffix == ".pbtxt":
        text_format.Parse(pb.read_text(), model)
    else:
        model.ParseFromString(pb.read_bytes())
    for meta_graph in model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"{path}: no meta graph tagged '{SERVE_TAG}'")


class ModelStore:
    """The versions of one model under ``base_path``, kept in step with the disk."""

    def __init__(self, name: str, base_path: str | os.PathLike, *, labels: dict[str, int] | None = None,
                 poll_seconds: float = 1.0, on_change: Callable[[str], None] | None = None, batching: bool = True,
                 batch_timeout: float = 0.001):
        self.name = name
        self.batching = batching
        self.batch_timeout = batch_timeout
        self.base_path = Path(base_path)
        self.labels = dict(labels or {})
        self.poll_seconds = poll_seconds
        self.on_change = on_change or (lambda message: log.info("%s", message))
        self._versions: dict[int, Version] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- keeping up with the disk ------------------------------------------
    def poll(self) -> None:
        """Load new version directories (and changed ones), retire removed ones."""
        on_disk = version_dirs(self.base_path)
        with self._lock:
            known = dict(self._versions)
        for number in sorted(set(known) - set(on_disk)):
            if known[number].state != "END" or known[number].loaded is not None:
                with self._lock:
                    self._versions.pop(number, None)
                self.on_change(f"model {self.name!r}: version {number} removed from {self.base_path}")
        for number, path in sorted(on_disk.items()):
            stamp = _saved_model_file(path).stat().st_mtime
            current = known.get(number)
            if current is not None and current.stamp == stamp:
                continue
            self._load(number, path, stamp)

    def _load(self, number: int, path: Path, stamp: float) -> None:
        import tensorflow as tf

        version = Version(number, path, stamp=stamp)
        try:
            version.signature_defs = read_signature_defs(path)
            try:
                version.bundle = SessionBundle.load(path)
            except UnrestoredVariables as e:
                self.on_change(f"model {self.name!r}: version {number}: {e}. Serving it with TensorFlow's "
                               "object loader instead, as real TF Serving could not.")
                version.loaded = tf.saved_model.load(str(path), tags=[SERVE_TAG])
                version.functions = dict(version.loaded.signatures)
            names = (version.functions if version.bundle is None
                     else [name for name in version.signature_defs if name != INIT_OP_SIGNATURE])
            version.callable = frozenset(names)
            if self.batching:
                version.batchers = {name: Batcher(version, name, timeout=self.batch_timeout) for name in names
                                    if is_batch_major(version.signature_defs.get(name, meta_graph_pb2.SignatureDef()))}
            version.state = "AVAILABLE"
            self.on_change(f"model {self.name!r}: serving version {number} from {path} "
                           f"(signatures: {', '.join(sorted(names)) or 'none'})")
        except Exception as e:  # a broken export must not take the server down
            version.state, version.error = "END", f"could not load {path}: {e}"
            self.on_change(f"model {self.name!r}: version {number} failed to load: {e}")
        with self._lock:
            self._versions[number] = version

    def start(self) -> None:
        self.poll()
        self._thread = threading.Thread(target=self._watch, name=f"poll-{self.name}", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # keep polling whatever one pass hit
                log.exception("polling %s failed", self.base_path)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- lookup -------------------------------------------------------------
    def available(self) -> list[int]:
        with self._lock:
            return sorted(n for n, v in self._versions.items() if v.state == "AVAILABLE")

    def versions(self) -> list[Version]:
        with self._lock:
            return [self._versions[n] for n in sorted(self._versions)]

    def resolve(self, model_spec) -> Version:
        """The servable a ModelSpec asks for, or TF Serving's NOT_FOUND / INVALID_ARGUMENT."""
        name = model_spec.name
        if not name:
            raise invalid("ModelSpec has no name specified.")
        choice = model_spec.WhichOneof("version_choice")
        if choice == "version_label":
            label = model_spec.version_label
            if name != self.name or label not in self.labels:
                raise invalid(f"Unrecognized servable version label: {label}")
            number: int | None = self.labels[label]
        elif choice == "version":
            number = model_spec.version.value
        else:
            number = None
        asked = number
        with self._lock:
            if name == self.name:
                if number is None:
                    ready = [n for n, v in self._versions.items() if v.state == "AVAILABLE"]
                    number = max(ready) if ready else None
                found = self._versions.get(number) if number is not None else None
                if found is not None and found.state == "AVAILABLE":
                    return found
        request = f"Latest({name})" if asked is None else f"Specific({name}, {asked})"
        raise ServingStatus("NOT_FOUND", f"Servable not found for request: {request}")


# -- the APIs, on numpy arrays ------------------------------------------------

def signature_for_predict(version: Version, name: str) -> meta_graph_pb2.SignatureDef:
    try:
        return version.signature_defs[name or DEFAULT_SIGNATURE]
    except KeyError:
        raise ServingStatus("FAILED_PRECONDITION", f'Serving signature key "{name or DEFAULT_SIGNATURE}" not found.') from None


@dataclass(frozen=True)
class SignatureFacts:
    """What every Predict checks, taken out of the SignatureDef once (reading protobuf maps is slow)."""

    inputs: frozenset[str]
    dtypes: dict[str, int]
    outputs: frozenset[str]
    has_defaults: bool

    @classmethod
    def of(cls, version: Version, name: str) -> "SignatureFacts":
        facts = version.facts.get(name)
        if facts is None:
            signature = signature_for_predict(version, name)
            facts = cls(frozenset(signature.inputs), {k: v.dtype for k, v in signature.inputs.items()},
                        frozenset(signature.outputs), bool(signature.defaults))
            version.facts[name] = facts
        return facts


def predict(version: Version, signature_name: str, inputs: dict[str, np.ndarray],
            output_filter: Any = ()) -> dict[str, np.ndarray]:
    """TF Serving's RunPredict: validate names, feed the signature, return the asked outputs."""
    signature_name = signature_name or DEFAULT_SIGNATURE
    facts = SignatureFacts.of(version, signature_name)
    expected = facts.inputs
    sent = set(inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not facts.has_defaults):
        raise invalid(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}.")
    for name in sorted(sent):
        if name not in expected:
            raise invalid(f"input tensor alias not found in signature: {name}. "
                          f"Inputs expected to be in the set {{{','.join(sorted(expected))}}}.")
        _check_input(name, inputs[name], facts.dtypes[name])
    wanted = list(output_filter)
    for alias in wanted:
        if alias not in facts.outputs:
            raise invalid(f"output tensor alias not found in signature: {alias} Outputs expected to be "
                          f"in the set {{{','.join(sorted(facts.outputs))}}}.")
    if len(set(wanted)) != len(wanted):
        raise invalid(f"duplicate output tensor alias: {next(a for a in wanted if wanted.count(a) > 1)}")
    if signature_name not in version.callable:
        raise invalid(f'signature "{signature_name}" cannot be called (it is not a function signature of the SavedModel)')
    outputs = version.run(signature_name, inputs)
    return {alias: outputs[alias] for alias in (wanted or sorted(outputs))}


def _check_input(name: str, array: np.ndarray, want: int) -> None:
    """The type against the signature's, with TensorFlow's message.

    Shapes are left to the model, as TF Serving does: a TF1 graph takes ``[3]``
    where its signature says ``[-1, 1]`` (half_plus_two's famous curl example).
    """
    got = types_pb2.DT_STRING if array.dtype.kind in "OSU" else tensors._DTYPE_OF_NUMPY.get(array.dtype)
    if got != want:
        got_name = tensors.dtype_name(got) if got is not None else str(array.dtype)
        raise invalid(f"Expects arg '{name}' to be {tensors.dtype_name(want)} but {got_name} is provided")


def _example_signature(version: Version, signature_name: str):
    """The named (default: serving_default) one-input signature for Classify/Regress, as TF Serving checks it."""
    signature_name = signature_name or DEFAULT_SIGNATURE
    signature = version.signature_defs.get(signature_name)
    if signature is None:
        raise invalid(f"No signature was found with the name: {signature_name}")
    if len(signature.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    return signature_name, signature


def classify(version: Version, signature_name: str, examples: list[bytes]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """TF Serving's RunClassify on serialized tf.Examples: (classes [N,K] or None, scores [N,K] or None)."""
    signature_name, signature = _example_signature(version, signature_name)
    if len(signature.outputs) not in (1, 2):
        raise invalid(f"Expected one or two output Tensors, found {len(signature.outputs)}")
    if CLASSIFY_INPUTS not in signature.inputs:
        raise invalid(f"No classification inputs found in SignatureDef: {signature}")
    if CLASSIFY_CLASSES not in signature.outputs and CLASSIFY_SCORES not in signature.outputs:
        raise invalid('Expected classification signature outputs to contain at least one of "classes" or '
                      f'"scores". Signature was: {signature}')
    if not examples:
        raise invalid("Input is empty.")
    outputs = version.run(signature_name, {CLASSIFY_INPUTS: np.array(examples, dtype=object)})
    classes, scores = outputs.get(CLASSIFY_CLASSES), outputs.get(CLASSIFY_SCORES)
    for label, tensor in (("classes", classes), ("scores", scores)):
        if tensor is None:
            continue
        if tensor.ndim != 2:
            raise invalid(f"Expected Tensor shape: [batch_size num_classes] but got {list(tensor.shape)}")
        if tensor.shape[0] != len(examples):
            raise invalid(f"Expected {label} output batch size of {len(examples)}. Got: {tensor.shape[0]}")
    if classes is not None and classes.dtype.kind not in "OSU":
        raise invalid(f"Expected classes Tensor of DT_STRING. Got: {classes.dtype}")
    if scores is not None and scores.dtype != np.float32:
        raise invalid(f"Expected scores Tensor of DT_FLOAT. Got: {scores.dtype}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid(f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}")
    return classes, scores


def regress(version: Version, signature_name: str, examples: list[bytes]) -> np.ndarray:
    """TF Serving's RunRegress on serialized tf.Examples: one float per example."""
    signature_name, signature = _example_signature(version, signature_name)
    if len(signature.outputs) != 1:
        raise invalid("Expected one output Tensor.")
    if CLASSIFY_INPUTS not in signature.inputs:
        raise invalid(f"No regression inputs found in SignatureDef: {signature}")
    if REGRESS_OUTPUTS not in signature.outputs:
        raise invalid(f"No regression outputs found in SignatureDef: {signature}")
    if not examples:
        raise invalid("Input is empty.")
    values = version.run(signature_name, {CLASSIFY_INPUTS: np.array(examples, dtype=object)})[REGRESS_OUTPUTS]
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise invalid(f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {list(values.shape)}")
    if values.shape[0] != len(examples):
        raise invalid(f"Input batch size did not match output batch size: {len(examples)} vs. {values.shape[0]}")
    if values.dtype != np.float32:
        raise invalid(f"Expected output Tensor of DT_FLOAT.  Got: {values.dtype}")
    return values.reshape(-1)
