"""Predict throughput and latency of the local model server, against two ceilings measured in the same run.

    python bench/bench_serving.py [--requests 1000] [--concurrency 16] [--workers 16]

Model: the digits classifier (examples/digits, trained here in-process for a few
steps), one PNG per request through ``predict_images``. Four ways, same input:

- in-process: the loaded SavedModel's signature called directly, as the server
  calls it, without batching (the compute ceiling);
- no-op servicer: a gRPC PredictionService that answers every Predict with a
  ready-made response of the same size (the transport ceiling: gRPC + protobuf);
- local server: ``kubeflow-jupyter serve``'s gRPC API, the real path;
- local server with the model call stubbed (a diagnostic, not a ceiling): the same
  server whose loaded version answers every call with one real answer, repeated to
  the batch's size, so what is left is what gRPC, Python and batching cost.

The gRPC load comes from a separate process that sends the serialized request
bytes as they are (no protobuf work on the client side), so the servers' own
cost is what is measured. Prints req/s and p50/p99 latency for each,
sequential and with CONCURRENCY requests in flight, and the ratios. Goal: the
server's throughput >= 0.7 of the transport ceiling's.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]


def digits_model(base: Path) -> bytes:
    """Train briefly, export to BASE/1, return one digit as PNG."""
    sys.path.insert(0, str(REPO / "examples" / "digits"))
    import numpy as np
    import tensorflow as tf
    from PIL import Image
    from train_digits import CLASS_NAMES, load_data, local_copy, train

    from kubeflow_jupyter.serving.export import export_image_classifier

    images, labels = load_data()
    model = local_copy(
        train(tf.distribute.get_strategy(), None, images, labels, steps=50, batch_size=64, learning_rate=0.01)
    )
    export_image_classifier(model, base, CLASS_NAMES, version=1, channels=1)
    buf = io.BytesIO()
    Image.fromarray(np.round(images[0, :, :, 0] * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def measure(call, requests: int, concurrency: int) -> dict:
    """Sequential latencies (p50/p99) and throughput with ``concurrency`` callers."""
    for _ in range(20):  # warm-up: tracing, connections, thread pools
        call()
    latencies = []
    for _ in range(requests):
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
    latencies.sort()
    per_thread = requests // concurrency
    barrier = threading.Barrier(concurrency + 1)

    def worker():
        barrier.wait()
        for _ in range(per_thread):
            call()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "seq_rps": requests / sum(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "conc_rps": per_thread * concurrency / elapsed,
    }


def stub_model_call(version, signature: str, inputs: dict) -> None:
    """``version`` answers every call of ``signature`` with this one answer, repeated to the batch's size."""
    import numpy as np

    answer = version.run_now(signature, inputs)

    def run_now(name, batch):
        size = len(next(iter(batch.values())))
        return {alias: np.repeat(value, size, axis=0) for alias, value in answer.items()}

    version.run_now = run_now


def best(runs: list[dict]) -> dict:
    """The best value of each figure over the rounds (highest rate, lowest latency)."""
    return {key: (max if key.endswith("rps") else min)(r[key] for r in runs) for key in runs[0]}


PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
STUBBED = "local server, model call stubbed"


def _load_process(address: str, request: bytes, requests: int, concurrency: int, conn) -> None:
    """Child process: raw-bytes Predict calls against ``address``; sends the measurements back."""
    import grpc

    with grpc.insecure_channel(address) as channel:
        predict = channel.unary_unary(PREDICT_METHOD)  # no (de)serializers: bytes in, bytes out
        conn.send(measure(lambda: predict(request, timeout=60), requests, concurrency))


def remote_measure(address: str, request: bytes, requests: int, concurrency: int) -> dict:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_load_process, args=(address, request, requests, concurrency, child))
    process.start()
    result = parent.recv()
    process.join()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=16, help="gRPC thread pool of both servers")
    parser.add_argument(
        "--tensorflow-intra-op-parallelism",
        dest="intra_op",
        type=int,
        default=1,
        help="as `kubeflow-jupyter serve`'s flag, with its default (1)",
    )
    parser.add_argument("--tensorflow-inter-op-parallelism", dest="inter_op", type=int, default=0)
    parser.add_argument("--no-batching", action="store_true", help="as `kubeflow-jupyter serve --no-batching`")
    parser.add_argument(
        "--batch-timeout-micros",
        type=int,
        default=1000,
        help="as `kubeflow-jupyter serve`'s flag, with its default (1000)",
    )
    args = parser.parse_args()

    import grpc
    import numpy as np
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from kubeflow_jupyter.serving.grpc_service import grpc_server
    from kubeflow_jupyter.serving.inception import predict_request
    from kubeflow_jupyter.serving.server import ModelServer, configure_tensorflow

    # What `kubeflow-jupyter serve --tensorflow-{intra,inter}-op-parallelism` does; here it applies
    # to the in-process ceiling too, so both run TensorFlow alike.
    configure_tensorflow(args.intra_op, args.inter_op)

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "digits"
        png = digits_model(base)
        request = predict_request([png], model="digits")

        def model_server():
            return ModelServer(
                base,
                "digits",
                port=0,
                rest_port=None,
                workers=args.workers,
                batching=not args.no_batching,
                batch_timeout=args.batch_timeout_micros / 1e6,
                announce=lambda m: None,
            ).start()

        server, stubbed = model_server(), model_server()
        version = server.core.resolve(request.model_spec)
        batch = {"images": np.array([png], dtype=object)}
        stub_model_call(stubbed.core.resolve(request.model_spec), "predict_images", batch)
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        canned = stub.Predict(request, timeout=30)  # the no-op servicer answers with a real-sized response

        class NoOp(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):
                return canned

        noop = grpc_server(args.workers)  # the model server's own options: thread pool, message sizes
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(NoOp(), noop)
        noop_port = noop.add_insecure_port("127.0.0.1:0")
        noop.start()

        raw = request.SerializeToString()
        targets = {
            "in-process (compute ceiling)": lambda: measure(
                lambda: version.run_now("predict_images", batch), args.requests, args.concurrency
            ),
            "no-op gRPC servicer (transport ceiling)": lambda: remote_measure(
                f"127.0.0.1:{noop_port}", raw, args.requests, args.concurrency
            ),
            "local server (gRPC Predict)": lambda: remote_measure(
                f"127.0.0.1:{server.port}", raw, args.requests, args.concurrency
            ),
            STUBBED: lambda: remote_measure(f"127.0.0.1:{stubbed.port}", raw, args.requests, args.concurrency),
        }
        # Rounds interleave them so that a busy spell of a shared machine hits them alike;
        # each keeps its best round (the least disturbed one).
        rounds: dict[str, list[dict]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, run in targets.items():
                rounds[name].append(run())
        results = {name: best(runs) for name, runs in rounds.items()}
        channel.close()
        noop.stop(0)
        server.stop()
        stubbed.stop()

    print(
        f"\ndigits predict_images, 1 PNG per request, {args.requests} requests; "
        f"concurrent = {args.concurrency} callers; best of {args.rounds} rounds; gRPC workers {args.workers}; "
        f"batching {'off' if args.no_batching else f'on (timeout {args.batch_timeout_micros} us)'}; "
        f"TensorFlow intra-op {args.intra_op}, inter-op {args.inter_op} threads"
    )
    print(f"{'':42s} {'seq req/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s} {'conc req/s':>11s}")
    for name, r in results.items():
        print(f"{name:42s} {r['seq_rps']:10.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['conc_rps']:11.1f}")
    real = results["local server (gRPC Predict)"]
    transport = results["no-op gRPC servicer (transport ceiling)"]
    compute = results["in-process (compute ceiling)"]
    conc_ratio = real["conc_rps"] / transport["conc_rps"]
    print(
        f"\nserver / transport ceiling: sequential {real['seq_rps'] / transport['seq_rps']:.2f}, "
        f"concurrent {conc_ratio:.2f}  (goal >= 0.70)"
    )
    print(
        f"server / compute ceiling:   sequential {real['seq_rps'] / compute['seq_rps']:.2f}, "
        f"concurrent {real['conc_rps'] / compute['conc_rps']:.2f}"
    )
    free = results[STUBBED]
    print(
        f"server with the model call stubbed / transport ceiling: sequential "
        f"{free['seq_rps'] / transport['seq_rps']:.2f}, concurrent {free['conc_rps'] / transport['conc_rps']:.2f}  "
        "(what gRPC, Python and batching leave for TensorFlow)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
