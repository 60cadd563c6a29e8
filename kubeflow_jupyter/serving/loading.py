"""Loading a SavedModel version the way TF Serving does, into a servable whose signatures can be called.

A version is loaded as TF Serving's ``SessionBundle`` loads it: the ``serve`` meta
graph in a TensorFlow session, variables filled by the saver's restore op,
signatures run by tensor name. That is also the fast way: one session call costs a
fraction of a TF2 function call. An export whose variables that restore op does not
fill (TF Serving would answer "Could not find variable") is still served, through
``tf.saved_model.load``, and the loader says why.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from .batching import Batcher, is_batch_major
from .server_errors import ServingStatus, code_name, invalid

INIT_OP_SIGNATURE = "__saved_model_init_op"  # TF2's init op, listed among the signatures but not one to call
SERVE_TAG = "serve"


@dataclass
class Version:
    """One version directory: its state and, once loaded, its signatures."""

    number: int
    path: Path
    state: str = "LOADING"  # LOADING | AVAILABLE | END (load failed or removed)
    error: str = ""
    signature_defs: dict[str, meta_graph_pb2.SignatureDef] = field(default_factory=dict)
    bundle: SessionBundle | None = None  # TF Serving's way; None when the export needs TF2's loader
    functions: dict[str, Callable] = field(default_factory=dict)  # TF2's loader: the signatures as functions
    loaded: Any = None  # the tf.saved_model.load object: keeps the variables alive
    callable: frozenset[str] = frozenset()  # the signatures that can be run
    facts: dict[str, Any] = field(default_factory=dict)  # per signature, read once from the protos (signatures.py)
    stamp: float = 0.0  # mtime of saved_model.pb when it was loaded
    batchers: dict[str, Batcher] = field(default_factory=dict)  # per batch-major signature, when batching

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
            raise ServingStatus(code_name(e.error_code), e.message) from None
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
    def load(cls, path: Path) -> SessionBundle:
        """Load ``path``; ``UnrestoredVariables`` when TF Serving's steps leave variables empty."""
        import tensorflow as tf

        intra = tf.config.threading.get_intra_op_parallelism_threads()
        inter = tf.config.threading.get_inter_op_parallelism_threads()
        config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=intra, inter_op_parallelism_threads=inter, allow_soft_placement=True
        )
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
                if (
                    saver.restore_op_name
                    and not tf.compat.v1.global_variables()
                    and checkpoint.with_suffix(".index").exists()
                ):
                    session.run(saver.restore_op_name, {saver.filename_tensor_name: str(checkpoint)})
                missing = _uninitialized_variables(session, graph, meta_graph.signature_def)
        except BaseException:
            session.close()
            raise
        if missing:
            session.close()
            raise UnrestoredVariables(missing)
        return cls(session, inline=inter == 0)

    def run(
        self, name: str, signature: meta_graph_pb2.SignatureDef, inputs: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        fed = tuple(sorted(inputs))
        entry = self._callables.get((name, fed))
        if entry is None:
            entry = self._make_callable(name, signature, fed)
        outputs, call = entry
        return dict(zip(outputs, call(*[inputs[alias] for alias in fed]), strict=True))

    def _make_callable(self, name: str, signature: meta_graph_pb2.SignatureDef, fed: tuple[str, ...]):
        from tensorflow.core.protobuf import config_pb2

        with self._lock:
            entry = self._callables.get((name, fed))
            if entry is None:
                outputs = sorted(signature.outputs)
                options = config_pb2.CallableOptions(
                    feed=[signature.inputs[alias].name for alias in fed],
                    fetch=[signature.outputs[alias].name for alias in outputs],
                )
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
        super().__init__(
            f"its restore op leaves {len(names)} variable(s) empty ({shown}); TF Serving would answer "
            f"'Could not find variable {names[0]}'. A Keras 3 model saved inside a tf.Module needs "
            "its tf.Variables tracked by the module (kubeflow_jupyter.serving.export does this)"
        )
        self.names = names


def _uninitialized_variables(session, graph, signatures) -> list[str]:
    """Resource variables the signatures read that hold no value (checked without running a signature)."""
    import tensorflow as tf

    pending = [
        graph.get_operation_by_name(info.name.split(":")[0])
        for name, signature in signatures.items()
        if name != INIT_OP_SIGNATURE
        for info in signature.outputs.values()
    ]
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
    return [op.get_attr("shared_name").decode() or op.name for op, ok in zip(handles, flags, strict=True) if not ok]


def load_version(
    number: int,
    path: Path,
    stamp: float,
    *,
    batching: bool = True,
    batch_timeout: float = 0.001,
    say: Callable[[str], None] = print,
    model: str = "",
) -> Version:
    """Version ``number`` from ``path``: AVAILABLE, or END with the reason; ``say`` tells what happened."""
    import tensorflow as tf

    version = Version(number, path, stamp=stamp)
    try:
        version.signature_defs = read_signature_defs(path)
        try:
            version.bundle = SessionBundle.load(path)
        except UnrestoredVariables as e:
            say(
                f"model {model!r}: version {number}: {e}. Serving it with TensorFlow's "
                "object loader instead, as real TF Serving could not."
            )
            version.loaded = tf.saved_model.load(str(path), tags=[SERVE_TAG])
            version.functions = dict(version.loaded.signatures)
        names = (
            version.functions
            if version.bundle is None
            else [name for name in version.signature_defs if name != INIT_OP_SIGNATURE]
        )
        version.callable = frozenset(names)
        if batching:
            version.batchers = {
                name: Batcher(version, name, timeout=batch_timeout)
                for name in names
                if is_batch_major(version.signature_defs.get(name, meta_graph_pb2.SignatureDef()))
            }
        version.state = "AVAILABLE"
        say(f"model {model!r}: serving version {number} from {path} (signatures: {', '.join(sorted(names)) or 'none'})")
    except Exception as e:  # a broken export must not take the server down
        version.state, version.error = "END", f"could not load {path}: {e}"
        say(f"model {model!r}: version {number} failed to load: {e}")
    return version


def saved_model_file(path: Path) -> Path | None:
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        if (path / name).is_file():
            return path / name
    return None


def read_signature_defs(path: Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs of the meta graph tagged ``serve``, as TF Serving reads them."""
    from google.protobuf import text_format

    pb = saved_model_file(path)
    model = saved_model_pb2.SavedModel()
    if pb.suffix == ".pbtxt":
        text_format.Parse(pb.read_text(), model)
    else:
        model.ParseFromString(pb.read_bytes())
    for meta_graph in model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"{path}: no meta graph tagged '{SERVE_TAG}'")
