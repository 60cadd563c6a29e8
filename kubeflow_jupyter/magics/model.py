"""``%model``: classify images with a served model inline, and serve a model from the notebook.

Argument parsing and display only: requests go through
:mod:`kubeflow_jupyter.serving` (client, inception helpers, background server).
A refused or failed action raises: the cell fails with one message, no traceback.
"""

from __future__ import annotations

import glob
import os
import shlex

from IPython.core.error import UsageError as IPythonUsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..errors import UsageError

ACTIONS = ("predict", "serve", "status", "metadata", "stop")


@magics_class
class ModelMagics(Magics):
    """Holds the servers this kernel started; the latest one is the default target."""

    def __init__(self, shell=None):
        super().__init__(shell)
        self._served = None  # the BackgroundServer last started here

    @magic_arguments()
    @argument("action", choices=ACTIONS, help="predict IMAGE... | serve MODEL_BASE_PATH | status | metadata | stop")
    @argument("paths", nargs="*", help="images to classify (paths or globs), or the model base path to serve")
    @argument(
        "--server",
        help="host:port of the model server (default: the one %%model serve started, else "
        "$KUBEFLOW_JUPYTER_MODEL_SERVER, else localhost:9000; with --rest localhost:8501)",
    )
    @argument(
        "--model",
        help="model name (default: the one %%model serve started, else the server's only model, else inception)",
    )
    @argument("--signature", default="predict_images", help="signature for predict (default predict_images)")
    @argument("--version", type=int, help="pin a model version")
    @argument("--label", help="pin a version label")
    @argument("--rest", action="store_true", help="use the REST API instead of gRPC")
    @argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default 30)")
    @argument("--model-name", help="serve: the name clients ask for")
    @argument("--port", type=int, default=9000, help="serve: gRPC port (default 9000; 0 picks a free one)")
    @argument("--rest-port", type=int, default=8501, help="serve: REST port (default 8501; 0 picks a free one)")
    @argument("--host", default="127.0.0.1", help="serve: address to bind (default 127.0.0.1)")
    @line_magic
    def model(self, line: str = ""):
        """Query a TensorFlow Serving model server, or serve a SavedModel from this kernel.

        %model predict cat.jpg dog.jpg [--server host:port] [--model inception] [--signature predict_images]
            shows each image with its top-5 classes (table and bar chart)
        %model serve models/digits --model-name digits [--port 9000] [--rest-port 8501]
            starts the local TF-Serving-compatible server in the background (stopped with the kernel)
        %model status | %model metadata   versions and their state | signatures of the model
        %model stop                        stops the servers this kernel started

        A refused or failed action (a bad option, an unreadable image, no such model, no
        server) fails the cell with one message and no traceback, so that "Run All" stops there.
        """
        try:  # POSIX splitting: quoted paths with spaces stay one argument, without their quotes
            args = self.model.parser.parse_args(shlex.split(line))
        except (IPythonUsageError, ValueError) as e:  # a bad option, unbalanced quotes
            raise UsageError(f"%model: {e}", prog="%model") from None
        return getattr(self, f"_{args.action}")(args)

    # -- actions -------------------------------------------------------------------
    def _predict(self, args):
        from IPython.display import display

        from ..serving.client import PredictionClient
        from ..serving.display import ImagePrediction
        from ..serving.errors import ImageError
        from ..serving.inception import classify_images, load_images

        paths = _expand(args.paths)
        if not paths:
            raise ImageError("%model predict: give at least one image path, e.g. %model predict cat.jpg")
        images = load_images(paths)  # every file checked here: nothing is sent if one is not an image
        with PredictionClient(self._server(args), rest=args.rest, timeout=args.timeout) as client:
            results = classify_images(
                images,
                model=self._model(args, client),
                signature=args.signature,
                version=args.version,
                label=args.label,
                client=client,
            )
        for path, data, top in zip(paths, images, results, strict=True):
            display(ImagePrediction(os.path.basename(path), data, top))

    def _serve(self, args):
        from ..serving.background import start_server

        if len(args.paths) != 1 or not args.model_name:
            raise UsageError(
                "%model serve: give one MODEL_BASE_PATH and --model-name NAME, "
                "e.g. %model serve models/digits --model-name digits"
            )
        server = start_server(
            args.paths[0],
            args.model_name,
            port=args.port,
            rest_port=args.rest_port,
            host=args.host,
            feature="%model serve",
        )
        self._served = server
        rest = f", REST {server.rest_address}" if server.rest_address else ""
        print(
            f"serving {args.model_name!r} from {server.base_path}: gRPC {server.grpc_address}{rest} "
            "(stops with the kernel, or %model stop)"
        )

    def _status(self, args):
        from ..serving.client import PredictionClient

        with PredictionClient(self._server(args), rest=args.rest, timeout=args.timeout) as client:
            model = self._model(args, client)
            versions = client.status(model, version=args.version)
        print(f"model {model!r} on {client.server}:")
        for v in versions:
            print(f"  version {v.version}: {v.state}" + (f" ({v.error})" if v.error else ""))

    def _metadata(self, args):
        from ..serving.client import PredictionClient

        with PredictionClient(self._server(args), rest=args.rest, timeout=args.timeout) as client:
            model = self._model(args, client)
            meta = client.metadata(model, version=args.version, label=args.label)
        print(f"model {meta.name!r} version {meta.version} on {client.server}:")
        for name, sig in sorted(meta.signatures.items()):
            if name.startswith("__"):
                continue
            print(f"  {name}:")
            for kind, tensors in (("in ", sig.inputs), ("out", sig.outputs)):
                for tname, info in sorted(tensors.items()):
                    shape = (
                        "?"
                        if info.shape is None
                        else "[" + ",".join("?" if d < 0 else str(d) for d in info.shape) + "]"
                    )
                    print(f"    {kind} {tname}: {info.dtype} {shape}")

    def _stop(self, args):
        from ..serving.background import running_servers

        servers = running_servers()
        for server in servers:
            server.stop()
            print(f"stopped the server of {server.model!r} ({server.grpc_address})")
        if not servers:
            print("no model server started by this kernel is running")
        self._served = None

    # -- defaults --------------------------------------------------------------------
    def _server(self, args) -> str | None:
        if args.server:
            return args.server
        if self._served is not None and self._served.running:
            return self._served.rest_address if args.rest else self._served.grpc_address
        return None  # the client's default: $KUBEFLOW_JUPYTER_MODEL_SERVER, else localhost

    def _model(self, args, client) -> str:
        if args.model:
            return args.model
        if self._served is not None and self._served.running and not args.server:
            return self._served.model
        from ..serving.inception import choose_model

        return choose_model(client)


def _expand(paths: list[str]) -> list[str]:
    """Globs expanded (a line magic gets no shell); other paths as given, so a missing file is named."""
    out: list[str] = []
    for path in paths:
        matches = sorted(glob.glob(os.path.expanduser(path))) if any(c in path for c in "*?[") else []
        out.extend(matches or [path])
    return out
