"""The model server survives hostile input: huge described tensors, deep JSON, half-sent requests.

The server runs as ``kubeflow-jupyter serve`` in its own process, so that its
memory (VmRSS) and thread count can be read from /proc/<pid>/status. Its model
is a small export made here: ``serving_default`` sums a float matrix per row,
``lengths`` gives the length of each string, ``classify``/``regress`` read a
2-float feature ``x`` from tf.Examples.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_service_pb2_grpc, regression_pb2

from kubeflow_jupyter.serving import httpd
from kubeflow_jupyter.serving.background import start_server

pytestmark = pytest.mark.tensorflow

LIMIT = 64 << 20  # the default --max-request-tensor-bytes
REST_THREADS = 4
REST_TIMEOUT_S = 3


def _export(base) -> None:
    import tensorflow as tf

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
        def total(self, x):
            return {"sum": tf.reduce_sum(x, axis=1)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="s")])
        def lengths(self, s):
            return {"length": tf.strings.length(s)}

        def _features(self, serialized):
            spec = {"x": tf.io.FixedLenFeature([2], tf.float32, default_value=[0.0, 0.0])}
            return tf.io.parse_example(serialized, spec)["x"]

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify(self, inputs):
            return {"scores": self._features(inputs)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def regress(self, inputs):
            return {"outputs": tf.reduce_sum(self._features(inputs), axis=1)}

    model = Model()
    tf.saved_model.save(
        model,
        str(base / "1"),
        signatures={
            "serving_default": model.total,
            "lengths": model.lengths,
            "classify": model.classify,
            "regress": model.regress,
        },
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile-model")
    _export(base)
    server = start_server(
        base,
        "sum",
        port=0,
        rest_port=0,
        extra_args=[
            "--rest-api-num-threads",
            str(REST_THREADS),
            "--rest-api-timeout-in-ms",
            str(REST_TIMEOUT_S * 1000),
        ],
    )
    try:
        with grpc.insecure_channel(server.grpc_address) as channel:
            server.stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            _good_predict(server)  # warm both signatures: their first call builds TensorFlow callables
            _good_lengths(server)
            assert _rest(server, "POST", "/v1/models/sum:predict", {"instances": [[1.0, 2.0]]}) == (
                200,
                {"predictions": [3.0]},
            )
            yield server
    finally:
        server.stop()


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def rss_mib(server) -> float:
    return int(_status(server.process.pid)["VmRSS"].split()[0]) / 1024


def threads(server) -> int:
    return int(_status(server.process.pid)["Threads"])


def _request(dims, *, dtype=1, signature="", name="x", **values) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "sum"
    request.model_spec.signature_name = signature
    tensor = request.inputs[name]
    tensor.dtype = dtype
    for size in dims:
        tensor.tensor_shape.dim.add(size=size)
    for field, value in values.items():
        if field == "tensor_content":
            tensor.tensor_content = value
        else:
            getattr(tensor, field).extend(value)
    return request


def _good_predict(server) -> None:
    response = server.stub.Predict(_request([2, 2], float_val=[1, 2, 3, 4]), timeout=60)
    assert list(response.outputs["sum"].float_val) == [3.0, 7.0]


def _good_lengths(server) -> None:
    response = server.stub.Predict(
        _request([2], dtype=7, signature="lengths", name="s", string_val=[b"ab", b"cde"]), timeout=60
    )
    assert list(response.outputs["length"].int_val) == [2, 3]


def _refused(server, request, call="Predict") -> tuple[grpc.StatusCode, str, float]:
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        getattr(server.stub, call)(request, timeout=60)
    return info.value.code(), info.value.details(), time.monotonic() - start


def _rest(server, method: str, path: str, body=None, headers=None) -> tuple[int, dict]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(
        f"http://{server.rest_address}{path}", data=data, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _raw(address: str, data: bytes, timeout: float = 30, *, half_close: bool = False) -> bytes:
    """Send bytes as they are (then say that is all, with ``half_close``), read until the server closes.

    No half-close by default: tornado takes a client's EOF as the end of the connection and drops
    the answer it had not written yet (HTTP clients do not half-close).
    """
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return _read_to_end(sock)


def _read_to_end(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


# -- gRPC: tensors are checked before they are made ------------------------------------


def test_memory_goes_back_after_a_large_request(served):
    # First in this module: RSS is measured from the warmed-up server, before other tests move it.
    values = np.ones((100, 120_000), np.float32)  # 48 MB, under the 64 MiB limit: served
    request = _request(values.shape, tensor_content=values.tobytes())
    before = rss_mib(served)
    response = served.stub.Predict(request, timeout=120)
    assert list(response.outputs["sum"].float_val)[:2] == [120_000.0, 120_000.0]
    del request, response
    peak_seen = rss_mib(served)
    deadline = time.monotonic() + 15
    while (after := rss_mib(served)) > before + 16 and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"\n48 MB request: RSS {before:.0f} MiB before, {peak_seen:.0f} just after, {after:.0f} settled")
    assert after <= before + 16, (before, after)
    _good_predict(served)


def test_a_billion_element_string_tensor_is_refused_at_once_and_memory_does_not_move(served):
    # ~100 bytes on the wire: TensorFlow would repeat the one value a billion times (tens of GB).
    request = _request([1_000_000_000], dtype=7, signature="lengths", name="s", string_val=[b"x"])
    assert request.ByteSize() < 120
    before = rss_mib(served)
    code, message, seconds = _refused(served, request)
    after = rss_mib(served)
    print(f"\n1e9-element string request: {code.name} in {seconds * 1000:.0f} ms; RSS {before:.0f} -> {after:.0f} MiB")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith("input 's': a tensor of shape [1000000000] of string would take 48000000000 bytes")
    assert f"limit of {LIMIT} bytes" in message and "--max-request-tensor-bytes" in message
    assert seconds < 5
    assert after - before < 16
    _good_lengths(served)


@pytest.mark.parametrize(
    "dims, values, expected",
    [
        ([-5], {"float_val": [1.0]}, "tensor parsing error: x: dimension 0 of its shape [-5] is -5: every dimension"),
        ([2, -1], {}, "tensor parsing error: x: dimension 1 of its shape [2, -1] is -1"),
        ([2, 2], {"float_val": [1, 2, 3, 4, 5]}, "tensor parsing error: x: float_val holds 5 values, more than the 4"),
        ([0, 2], {"float_val": [1.0]}, "tensor parsing error: x: float_val holds 1 values, more than the 0"),
        (
            [2, 2],
            {"tensor_content": b"\0" * 15},
            ("tensor parsing error: x: tensor_content holds 15 bytes where shape [2, 2] of float needs 4 x 4 = 16"),
        ),
        ([1] * 65, {}, "tensor parsing error: x: its shape has 65 dimensions, more than the 64"),
        (
            [20_000, 1_000],
            {"float_val": [1.0]},
            (
                f"input 'x': a tensor of shape [20000, 1000] of float would take "
                f"80000000 bytes once decoded, over the server's limit of {LIMIT}"
            ),
        ),
        (
            [1 << 40, 1 << 40],
            {"float_val": [1.0]},
            "input 'x': a tensor of shape [1099511627776, 1099511627776] of float",
        ),
    ],
    ids=[
        "negative",
        "minus-one",
        "more-values",
        "values-for-empty",
        "short-content",
        "65-dims",
        "80MB-broadcast",
        "2^80-elements",
    ],
)
def test_malformed_or_oversized_tensors_are_invalid_argument_and_the_server_keeps_serving(
    served, dims, values, expected
):
    code, message, seconds = _refused(served, _request(dims, **values))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith(expected), message
    assert seconds < 5
    _good_predict(served)


def test_unknown_rank_and_unsendable_types_are_invalid_argument(served):
    request = _request([3], float_val=[1.0])
    request.inputs["x"].tensor_shape.unknown_rank = True
    code, message, _ = _refused(served, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message == (
        "tensor parsing error: x: its shape has unknown rank (unknown_rank is set): a request tensor "
        "needs a fully defined shape"
    )
    code, message, _ = _refused(served, _request([2], dtype=20))  # DT_RESOURCE
    assert (code, message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "tensor parsing error: x: type resource cannot be sent in a request tensor",
    )
    code, message, _ = _refused(served, _request([1], dtype=7, signature="lengths", name="s", tensor_content=b"ab"))
    assert message == (
        "tensor parsing error: s: a string tensor carries its values in string_val, not in tensor_content"
    )
    _good_predict(served)


def test_fewer_values_than_the_shape_are_repeated_within_the_limit(served):
    response = served.stub.Predict(_request([3, 1000], float_val=[0.5]), timeout=60)
    assert list(response.outputs["sum"].float_val) == [500.0, 500.0, 500.0]
    response = served.stub.Predict(
        _request([4], dtype=7, signature="lengths", name="s", string_val=[b"a", b"bcd"]), timeout=60
    )
    assert list(response.outputs["length"].int_val) == [1, 3, 3, 3]


def test_the_limit_is_for_all_inputs_of_a_request_together(served):
    request = _request([9_000_000], float_val=[1.0])  # 36 MB: fits alone
    extra = request.inputs["y"]
    extra.CopyFrom(request.inputs["x"])  # 36 MB more: not together
    code, message, _ = _refused(served, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "with the 36000000 bytes of the inputs before it, would take 72000000 bytes" in message, message


def test_classify_and_regress_examples_are_bounded_too(served):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = "sum", "classify"
    target = request.input.example_list_with_context
    target.context.features.feature["pad"].bytes_list.value.append(b"p" * (1 << 20))  # 1 MiB, copied into each
    for _ in range(100):
        target.examples.add()
    code, message, seconds = _refused(served, request, "Classify")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and seconds < 5
    context = target.context.ByteSize()
    assert message.startswith(f"the 100 examples with a context of {context} bytes merged into each would take"), (
        message
    )
    assert f"limit of {LIMIT} bytes" in message

    good = classification_pb2.ClassificationRequest()
    good.model_spec.name, good.model_spec.signature_name = "sum", "classify"
    example = good.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend([0.25, 0.75])
    response = served.stub.Classify(good, timeout=60)
    assert [c.score for c in response.result.classifications[0].classes] == [0.25, 0.75]

    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name, regress.model_spec.signature_name = "sum", "regress"
    regress.input.example_list_with_context.CopyFrom(target)
    assert _refused(served, regress, "Regress")[0] == grpc.StatusCode.INVALID_ARGUMENT
    regress.input.example_list.examples.add().CopyFrom(example)
    assert served.stub.Regress(regress, timeout=60).result.regressions[0].value == 1.0


# -- REST: parsing is bounded, nothing is a 500 ----------------------------------------


def test_deeply_nested_json_is_a_400_naming_the_limit(served):
    deep = b'{"instances": ' + b"[" * 5000 + b"1.0" + b"]" * 5000 + b"}"
    status, body = _rest(served, "POST", "/v1/models/sum:predict", deep)
    assert status == 400
    assert body == {
        "error": "JSON Parse error: the document nests arrays and objects 5001 levels deep; at most 64 are allowed"
    }
    brackets_in_strings = json.dumps({"instances": [["[" * 5000, "{" * 100]]}).encode()
    status, body = _rest(served, "POST", "/v1/models/sum:predict", brackets_in_strings)
    assert status == 400 and "Failed to process input 'x'" in body["error"]  # strings for a float input: the usual 400
    at_limit = b'{"instances": ' + b"[" * 63 + b"1.0" + b"]" * 63 + b"}"
    status, body = _rest(served, "POST", "/v1/models/sum:predict", at_limit)
    assert status == 200, body  # 64 levels are parsed (a TF1-style session takes the 63-dimensional input as sent)
    assert _rest(served, "POST", "/v1/models/sum:predict", {"instances": [[1.0, 2.0]]}) == (200, {"predictions": [3.0]})


def test_a_version_beyond_int64_is_a_400(served):
    for method, path in [
        ("POST", "/v1/models/sum/versions/99999999999999999999:predict"),
        ("GET", "/v1/models/sum/versions/99999999999999999999"),
        ("GET", "/v1/models/sum/versions/" + "9" * 5000 + "/metadata"),
    ]:
        status, body = _rest(served, method, path, {"instances": [[1.0]]} if method == "POST" else None)
        assert status == 400, (path[:60], body)
        assert "the version must be a whole number from 0 to 9223372036854775807 (int64)" in body["error"]
    status, body = _rest(served, "GET", "/v1/models/sum/versions/9223372036854775807")
    assert status == 404 and body == {"error": "Could not find version 9223372036854775807 of model sum"}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"text"',
        b"{}",
        b'{"instances": "abc"}',
        b'{"instances": {"x": 1}}',
        b'{"instances": []}',
        b'{"instances": [[null]]}',
        b'{"instances": [["a"]]}',
        b'{"instances": [[{"b64": "#"}]]}',
        b'{"inputs": {"x": [[true]]}}',
        b'{"inputs": {"y": [[1.0]]}}',
        b'{"instances": [[1.0]], "inputs": [[1.0]]}',
        b'{"instances": [[1.0], [1.0, 2.0]]}',
        b'{"signature_name": 7, "instances": []}',
        b'{"signature_name": "lengths", "instances": [1]}',
        b'{"instances": [[1.0]',
        b'{"instances": [[1.0]]}}',
    ],
    ids=lambda b: b[:30].decode("latin-1"),
)
def test_bad_json_is_a_400_with_a_json_error_never_a_500(served, body):
    status, doc = _rest(served, "POST", "/v1/models/sum:predict", body)
    assert status == 400 and isinstance(doc.get("error"), str), (status, doc)


def test_rest_classify_with_an_out_of_range_integer_is_a_400(served):
    status, doc = _rest(
        served, "POST", "/v1/models/sum:classify", {"signature_name": "classify", "examples": [{"x": [10**30, 1]}]}
    )
    assert status == 400 and "out of the range of int64" in doc["error"]


def test_rest_strings_count_against_the_tensor_limit(served):
    # An 8 MB body of 1.5M empty strings decodes to 1.5M elements x 48 bytes = 72 MB.
    body = b'{"signature_name": "lengths", "instances": [' + b'"",' * 1_499_999 + b'""]}'
    status, doc = _rest(served, "POST", "/v1/models/sum:predict", body)
    assert status == 400
    assert doc["error"].startswith("input 's' would take at least "), doc
    assert f"limit of {LIMIT} bytes" in doc["error"]
    assert _rest(served, "POST", "/v1/models/sum:predict", {"signature_name": "lengths", "instances": ["abc"]}) == (
        200,
        {"predictions": [3]},
    )


def test_bad_content_length_and_unsupported_framing_are_json_errors(served):
    head = "POST /v1/models/sum:predict HTTP/1.1\r\nHost: x\r\n"
    for extra, status in [
        ("Content-Length: abc\r\n", 400),
        ("Content-Length: -1\r\n", 400),
        ("Content-Length: 1, 2\r\n", 400),
        ("Content-Length: 99999999999999999999999\r\n", 413),
        (f"Content-Length: {(64 << 20) + 1}\r\n", 413),
        ("Transfer-Encoding: chunked\r\n", 411),
    ]:
        reply = _raw(served.rest_address, (head + extra + "\r\n").encode())
        first, _, rest = reply.partition(b"\r\n")
        assert first.startswith(f"HTTP/1.1 {status} ".encode()), (extra, reply[:200])
        assert "error" in json.loads(rest.split(b"\r\n\r\n", 1)[1]), reply
    reply = _raw(served.rest_address, b"GARBAGE\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")
    reply = _raw(
        served.rest_address, b"GET /v1/models/sum HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 431 ")


# -- REST: connections do not hold threads ----------------------------------------------------


def test_300_half_sent_requests_hold_no_threads_and_a_good_request_is_still_served(served):
    assert _rest(served, "POST", "/v1/models/sum:predict", {"instances": [[1.0]]})[0] == 200
    before = threads(served)
    half = b'POST /v1/models/sum:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"insta'
    host, port = served.rest_address.rsplit(":", 1)
    sockets = []
    try:
        for _ in range(300):
            sock = socket.create_connection((host, int(port)), timeout=30)
            sock.sendall(half)
            sockets.append(sock)
        time.sleep(0.5)
        during = threads(served)
        start = time.monotonic()
        assert _rest(served, "POST", "/v1/models/sum:predict", {"instances": [[1.0, 2.0]]}) == (
            200,
            {"predictions": [3.0]},
        )
        served_in = time.monotonic() - start
        peak = max(during, threads(served))
        print(
            f"\n300 half-sent requests: server threads {before} before, {peak} with them open; "
            f"a good request answered in {served_in * 1000:.0f} ms"
        )
        assert peak <= before + REST_THREADS, (before, peak)
        assert served_in < REST_TIMEOUT_S
        # The half-sent ones are answered 408 and closed once the read timeout passes.
        for sock in sockets[:5]:
            sock.settimeout(REST_TIMEOUT_S + 10)
            reply = _read_to_end(sock)
            assert reply.startswith(b"HTTP/1.1 408 "), reply[:100]
            assert b"--rest-api-timeout-in-ms" in reply
    finally:
        for sock in sockets:
            sock.close()
    assert threads(served) <= before + REST_THREADS


# -- the HTTP front end on its own (no model, in this process) ------------------------------------


@pytest.fixture()
def front_end():
    gate = threading.Event()
    calls = []

    def app(method, target, body):
        calls.append((method, target, body))
        if target == "/block":
            gate.wait(30)
        return 200, [("X-Echo", target)], httpd.json_payload({"method": method, "target": target, "body": len(body)})

    server = httpd.HttpServer("127.0.0.1", 0, app, threads=3, timeout=2, max_connections=5, max_body_bytes=1000).start()
    server.gate, server.calls = gate, calls
    yield server
    gate.set()
    server.stop()


def test_connections_beyond_the_limit_are_refused_with_503_and_slots_come_back(front_end):
    address = f"127.0.0.1:{front_end.port}"
    held = [socket.create_connection(("127.0.0.1", front_end.port), timeout=10) for _ in range(5)]
    try:
        for sock in held:
            sock.sendall(b"GET /x HTTP/1.1\r\n")  # half a request each
        time.sleep(0.3)
        reply = _raw(address, b"GET /y HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in reply
        assert b"--rest-max-connections" in reply
        held.pop().close()
        time.sleep(0.3)
        reply = _raw(address, b"GET /y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200 ") and b"X-Echo: /y" in reply
    finally:
        for sock in held:
            sock.close()


def test_requests_beyond_the_thread_pool_wait_and_threads_stay_bounded(front_end):
    start_threads = threading.active_count()
    results = []

    def call(i):
        reply = _raw(f"127.0.0.1:{front_end.port}", b"GET /block HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        results.append(reply.split(b"\r\n", 1)[0])

    callers = [threading.Thread(target=call, args=(i,)) for i in range(5)]
    for t in callers:
        t.start()
    deadline = time.monotonic() + 20
    while len(front_end.calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    # 5 callers, 3 workers: 3 requests run, 2 wait; the server added at most its 3 pool threads
    assert len(front_end.calls) == 3
    assert threading.active_count() - start_threads <= 5 + 3
    front_end.gate.set()
    for t in callers:
        t.join(30)
    assert results == [b"HTTP/1.1 200 OK"] * 5


def test_keep_alive_pipelining_expect_continue_and_head(front_end):
    with socket.create_connection(("127.0.0.1", front_end.port), timeout=10) as sock:
        # HTTP/1.1 requests carry Host (tornado answers 400 without it, as RFC 9112 says)
        sock.sendall(
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
            b"HEAD /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = _read_to_end(sock)
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert b'"body": 3' in data and b'"target": "/b"' in data and b'"target": "/c"' not in data
    with socket.create_connection(("127.0.0.1", front_end.port), timeout=10) as sock:
        sock.sendall(
            b"POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        interim = sock.recv(100)  # tornado words it "100 (Continue)"
        assert interim.startswith(b"HTTP/1.1 100 ") and interim.endswith(b"\r\n\r\n"), interim
        sock.sendall(b"hi")
        assert b'"body": 2' in _read_to_end(sock)


def test_a_half_sent_body_times_out_with_408(front_end):
    start = time.monotonic()
    reply = _raw(
        f"127.0.0.1:{front_end.port}",
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        timeout=20,
        half_close=False,
    )
    assert reply.startswith(b"HTTP/1.1 408 ") and 1.5 < time.monotonic() - start < 10
    assert front_end.timed_out == 1
    assert not [c for c in front_end.calls if c[1] == "/a"]  # never handed to the app
