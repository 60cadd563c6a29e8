"""``kubeflow-jupyter serve``: the local TF-Serving-compatible model server from a terminal.

``SERVE`` declares the verb in :mod:`kubeflow_jupyter.verbs`' terms; the main CLI lists it
with the TFJob verbs and calls :func:`run`. Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import argparse

from ..errors import CLI, KubeflowJupyterError, exit_code
from ..verbs import Verb, arg, build_parser


def _label(text: str) -> tuple[str, int]:
    name, sep, version = text.partition("=")
    if not sep or not name or not version.isdigit():
        raise argparse.ArgumentTypeError(f"--label {text!r}: write LABEL=VERSION, e.g. --label stable=1")
    return name, int(version)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number, 0 or more")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number, 1 or more")
    return int(text)


SERVE = Verb(
    "serve",
    "serve a SavedModel over TF Serving's gRPC and REST APIs",
    description="Serve the SavedModel versions under MODEL_BASE_PATH (MODEL_BASE_PATH/<version>/saved_model.pb) "
    "over TensorFlow Serving's gRPC and REST APIs. The latest version answers by default; any "
    "version on disk can be pinned; new version directories are picked up without a restart.",
    front_ends=(CLI,),
    global_options=False,
    groups=(("limits", "what one request or client may take (docs/serving.md, Limits)"),),
    args=(
        arg("model_base_path", metavar="MODEL_BASE_PATH", help="directory holding numbered version directories"),
        arg("--model-name", required=True, help="the name clients ask for (model_spec.name)"),
        arg("--port", type=int, default=9000, help="gRPC port (default 9000, as in the seed; 0 picks a free one)"),
        arg("--rest-port", type=int, default=8501, help="REST port (default 8501; 0 picks a free one)"),
        arg("--no-rest", action="store_true", help="serve gRPC only"),
        arg("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; the API has no authentication)"),
        arg(
            "--label",
            type=_label,
            action="append",
            default=[],
            metavar="LABEL=VERSION",
            help="a version label clients may pin (/labels/LABEL, model_spec.version_label); repeatable",
        ),
        arg("--poll-seconds", type=float, default=1.0, help="how often to look for new versions (default 1)"),
        arg(
            "--no-batching",
            action="store_true",
            help="run every request on its own (default: concurrent requests to a signature whose inputs "
            "and outputs are batch-major run as one batch, like TF Serving's --enable_batching)",
        ),
        arg(
            "--batch-timeout-micros",
            type=_count,
            default=1000,
            metavar="N",
            help="while requests are arriving together, how long a batch may wait for more of them "
            "(TF Serving's batch_timeout_micros; default 1000; a lone request never waits; "
            "0: never wait)",
        ),
        arg(
            "--tensorflow-intra-op-parallelism",
            type=_count,
            default=1,
            metavar="N",
            help="threads one TensorFlow op may use (TF Serving's --tensorflow_intra_op_parallelism; "
            "default 1: requests already run side by side, and handing an op's work to other "
            "threads costs more than it saves for small models; 0: TensorFlow picks, one per core, "
            "which can help one big model queried one request at a time on many cores)",
        ),
        arg(
            "--tensorflow-inter-op-parallelism",
            type=_count,
            default=0,
            metavar="N",
            help="TensorFlow ops of one request run at once (TF Serving's "
            "--tensorflow_inter_op_parallelism; default 0: the request's own thread runs them in "
            "turn, with no hand-off; N: a pool of N threads)",
        ),
        arg(
            "--max-request-tensor-bytes",
            type=_positive,
            default=64 << 20,
            metavar="N",
            group="limits",
            help="the most a request's input tensors may take once decoded, all inputs together (a "
            "string element counts its length + 48 bytes; default 67108864 = 64 MiB, e.g. 16M "
            "floats); over it: INVALID_ARGUMENT / HTTP 400. gRPC messages may be 4x this",
        ),
        arg(
            "--rest-api-num-threads",
            type=_positive,
            default=None,
            metavar="N",
            group="limits",
            help="threads that run REST requests (TF Serving's --rest_api_num_threads; default 4 per "
            "CPU); connections are held by tornado's event loop, not by threads",
        ),
        arg(
            "--rest-api-timeout-in-ms",
            type=_positive,
            default=30000,
            metavar="MS",
            group="limits",
            help="a REST request must arrive whole within this of its first byte, and an idle "
            "connection is closed after it (TF Serving's --rest_api_timeout_in_ms; default 30000); "
            "else HTTP 408",
        ),
        arg(
            "--rest-max-connections",
            type=_positive,
            default=512,
            metavar="N",
            group="limits",
            help="REST connections open at once (default 512); one more is answered HTTP 503",
        ),
        arg(
            "--rest-max-body-bytes",
            type=_positive,
            default=64 << 20,
            metavar="N",
            group="limits",
            help="the largest REST request body (default 67108864 = 64 MiB); over it: HTTP 413",
        ),
        arg(
            "--parent-pid",
            type=int,
            help="stop when this process ends (what %%model serve passes, "
            "so that a killed kernel leaves no server behind)",
        ),
    ),
)


#: what the model server imports: TensorFlow and tensorflow-serving-api (the ``[tensorflow]`` extra)
SERVER_MODULES = ("tensorflow", "tensorflow_serving.apis", "grpc")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from .. import extras

    # Before anything slow: a missing extra or a typo'd path answers at once.
    extras.check(*SERVER_MODULES, feature="kubeflow-jupyter serve")
    if not Path(args.model_base_path).is_dir():
        print(
            f"error: MODEL_BASE_PATH {args.model_base_path}: no such directory; give the directory that holds the "
            "numbered version directories (e.g. models/digits for models/digits/1/saved_model.pb)",
            file=sys.stderr,
        )
        return 2
    tf = extras.require(*SERVER_MODULES, feature="kubeflow-jupyter serve")
    with extras.dropping_startup_lines():  # the CUDA probe ("failed call to cuInit" without a GPU)
        tf.config.list_physical_devices()
    from .server import serve

    return serve(
        args.model_base_path,
        args.model_name,
        host=args.host,
        port=args.port,
        rest_port=None if args.no_rest else args.rest_port,
        labels=dict(args.label),
        poll_seconds=args.poll_seconds,
        batching=not args.no_batching,
        batch_timeout=args.batch_timeout_micros / 1e6,
        parent_pid=args.parent_pid,
        intra_op=args.tensorflow_intra_op_parallelism,
        inter_op=args.tensorflow_inter_op_parallelism,
        max_request_tensor_bytes=args.max_request_tensor_bytes,
        rest_threads=args.rest_api_num_threads,
        rest_timeout=args.rest_api_timeout_in_ms / 1000,
        rest_max_connections=args.rest_max_connections,
        rest_max_body_bytes=args.rest_max_body_bytes,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m kubeflow_jupyter.serving.cli serve MODEL_BASE_PATH --model-name NAME``, without the main
    CLI (what ``%model serve`` starts: no TFJob verbs to import)."""
    import sys

    parser = build_parser(CLI, [SERVE], prog="kubeflow-jupyter", description=SERVE.description)
    try:
        return run(parser.parse_args(argv))
    except KubeflowJupyterError as e:
        print(f"kubeflow-jupyter: {e.message_for(CLI)}", file=sys.stderr)
        return exit_code(e)


if __name__ == "__main__":
    raise SystemExit(main())
