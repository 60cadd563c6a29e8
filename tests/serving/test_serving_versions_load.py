"""Concurrent load, and version directories coming and going under a running server."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from tensorflow_serving.apis import prediction_service_pb2_grpc

from kubeflow_jupyter.serving.client import PredictionClient
from kubeflow_jupyter.serving.inception import classify_images, predict_request

pytestmark = pytest.mark.tensorflow


def test_200_concurrent_requests_over_grpc_and_rest_all_answer(grpc_address, rest_address, images):
    expected = classify_images(images["blue.png"], server=grpc_address)[0]
    good = predict_request([images["blue.png"]])
    bad = predict_request([b"corrupt"])
    with grpc.insecure_channel(grpc_address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        # 200 in flight at once; every 10th is a corrupt image, which must fail alone
        calls = [stub.Predict.future(bad if i % 10 == 0 else good, timeout=120) for i in range(200)]
        outcomes = []
        for call in calls:
            try:
                outcomes.append([c.decode() for c in call.result().outputs["classes"].string_val])
            except grpc.RpcError as e:
                outcomes.append(e.code())
    assert outcomes.count(grpc.StatusCode.INVALID_ARGUMENT) == 20
    assert all(o == [c for c, _ in expected] for o in outcomes if o != grpc.StatusCode.INVALID_ARGUMENT)

    def rest_call(_):
        return classify_images(images["blue.png"], server=rest_address, rest=True, timeout=120)[0]

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(rest_call, range(200)))
    assert all([c for c, _ in r] == [c for c, _ in expected] for r in results)


def _wait_for(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_new_version_is_picked_up_pinned_versions_stay_and_removed_ones_go(
    copy_of_base, tiny_inception, export_inception, images
):
    import keras

    from kubeflow_jupyter.serving.errors import ModelNotFound
    from kubeflow_jupyter.serving.server import ModelServer

    base = copy_of_base
    messages: list[str] = []
    server = ModelServer(base, "inception", port=0, rest_port=None, poll_seconds=0.2, announce=messages.append).start()
    try:
        client = PredictionClient(f"127.0.0.1:{server.port}")
        v1 = classify_images(images["red.jpg"], client=client)[0]
        other = keras.models.clone_model(tiny_inception)
        other.set_weights([-w for w in tiny_inception.get_weights()])  # a visibly different model
        export_inception.export(other, base, version=2)
        assert _wait_for(lambda: [s.version for s in client.status("inception")] == [1, 2])
        v2 = classify_images(images["red.jpg"], client=client)[0]
        assert v2 != v1  # latest wins: version 2 answers now
        assert classify_images(images["red.jpg"], client=client, version=1)[0] == v1
        assert client.metadata("inception").version == 2
        assert any("serving version 2" in m for m in messages)

        shutil.rmtree(base / "2")
        assert _wait_for(lambda: [s.version for s in client.status("inception")] == [1])
        assert classify_images(images["red.jpg"], client=client)[0] == v1
        with pytest.raises(ModelNotFound, match="has no version 2"):
            classify_images(images["red.jpg"], client=client, version=2)
        client.close()
    finally:
        server.stop()


def test_a_broken_version_is_reported_and_the_good_one_keeps_serving(copy_of_base, images):
    from kubeflow_jupyter.serving.server import ModelServer

    broken = copy_of_base / "5"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    server = ModelServer(copy_of_base, "inception", port=0, rest_port=None, announce=lambda m: None).start()
    try:
        client = PredictionClient(f"127.0.0.1:{server.port}")
        states = {s.version: (s.state, s.error) for s in client.status("inception")}
        assert states[1] == ("AVAILABLE", "") and states[5][0] == "END" and "could not load" in states[5][1]
        assert classify_images(images["grey.jpg"], client=client)[0]  # latest *available* is 1
        client.close()
    finally:
        server.stop()


def test_a_merged_batch_gives_each_call_its_own_answer_and_its_own_error(server, images):
    """Concurrent calls are stacked into one TensorFlow call: results split back exactly; a bad one fails alone."""
    import numpy as np
    from tensorflow_serving.apis import model_pb2

    from kubeflow_jupyter.serving.batching import Batcher, _Call
    from kubeflow_jupyter.serving.server_errors import ServingStatus

    version = server.core.resolve(model_pb2.ModelSpec(name="inception"))
    batcher = Batcher(version, "predict_images")
    inputs = [[images["red.jpg"]], [images["blue.png"], images["grey.jpg"]], [images["grey.jpg"]]]
    calls = [_Call({"images": np.array(i, dtype=object)}) for i in inputs]
    batcher._execute(calls)
    for call, i in zip(calls, inputs, strict=True):
        alone = version.run_now("predict_images", {"images": np.array(i, dtype=object)})
        assert call.error is None and call.outputs["classes"].shape == (len(i), 5)
        assert (call.outputs["classes"] == alone["classes"]).all()
        np.testing.assert_allclose(call.outputs["scores"], alone["scores"], rtol=1e-5)

    calls = [_Call({"images": np.array(i, dtype=object)}) for i in ([images["red.jpg"]], [b"corrupt"])]
    batcher._execute(calls)
    assert calls[0].error is None and calls[0].outputs["classes"].shape == (1, 5)
    assert isinstance(calls[1].error, ServingStatus) and calls[1].error.code == "INVALID_ARGUMENT"


class _SlowDoubler:
    """A stand-in Version: doubles ``x``; the first call blocks until released, so calls pile up."""

    def __init__(self):
        import threading

        self.release = threading.Event()
        self.started = threading.Event()
        self.batches: list[int] = []

    def run_now(self, signature, inputs):
        self.batches.append(len(inputs["x"]))
        if len(self.batches) == 1:
            self.started.set()
            self.release.wait(30)
        return {"y": inputs["x"] * 2}


def test_a_lone_call_never_waits_for_company():
    import numpy as np

    from kubeflow_jupyter.serving.batching import Batcher

    version = _SlowDoubler()
    version.release.set()
    batcher = Batcher(version, "s", timeout=60.0)  # a wait would hang the test
    for i in range(3):
        assert batcher.call({"x": np.array([i])})["y"].tolist() == [2 * i]
    assert version.batches == [1, 1, 1]


def test_under_load_the_next_batch_waits_for_more_calls():
    import threading
    import time

    import numpy as np

    from kubeflow_jupyter.serving.batching import Batcher

    version = _SlowDoubler()
    batcher = Batcher(version, "s", timeout=60.0, max_batch=3)
    results: dict[int, list] = {}

    def call(i):
        results[i] = batcher.call({"x": np.array([i])})["y"].tolist()

    threads = [threading.Thread(target=call, args=(0,))]
    threads[0].start()
    assert version.started.wait(10)  # call 0 runs alone and blocks
    for i in (1, 2):
        threads.append(threading.Thread(target=call, args=(i,)))
        threads[-1].start()
    while len(batcher._queue) < 2:  # calls 1 and 2 queued behind it
        time.sleep(0.01)
    version.release.set()
    while not batcher._lingering:  # crowded: the next leader waits for company ...
        time.sleep(0.01)
    threads.append(threading.Thread(target=call, args=(3,)))
    threads[-1].start()  # ... and a third call fills the batch to max_batch, ending the wait at once
    for t in threads:
        t.join(30)
    assert version.batches == [1, 3]
    assert results == {0: [0], 1: [2], 2: [4], 3: [6]}
