"""Issue #17, a newcomer's first hour: quiet cells, %model predict's defaults and local image
checks, a missing extra named in one line, folded TensorFlow start-up lines, the displays in
JupyterLab's theme (light or dark), and what the JobMonitor says about stopped replicas,
superseded conditions and a job deleted elsewhere."""

from __future__ import annotations

import re
import socket
import sys
import time
from dataclasses import replace

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from kubeflow_jupyter import errors, extras
from kubeflow_jupyter.logfold import Fold, fold_startup, folded_html, folded_text, is_startup_line
from kubeflow_jupyter.serving.display import ImagePrediction, error_html, top_table_html
from kubeflow_jupyter.serving.errors import ImageError
from kubeflow_jupyter.serving.inception import choose_model
from kubeflow_jupyter.tfjob.status import Condition, JobSnapshot, ReplicaState

# What TensorFlow 2.21 printed here on `import tensorflow` and its first op, with no GPU (measured).
STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796100349.658140   10497 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. "
    "To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796100349.658730   10497 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
    "I0000 00:00:1796100349.711498   10497 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
    "E0000 00:00:1796100352.838098   10497 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796100352.900000   10497 computation_placer.cc:177] computation placer already registered. "
    "Please check linkage and avoid linking the same target more than once.",
]
# What a cell must never show (the list, as substrings).
STARTUP_WORDS = ("absl::InitializeLog", "oneDNN", "cudart_stub", "cpu_feature_guard", "computation_placer", "cuInit")


# -- log folding -----------------------------------------------------------------------
def test_each_run_of_startup_lines_folds_into_one_marker_keeping_the_raw_lines():
    log = ["python train.py", *STARTUP[:4], "step 1 loss=0.9", *STARTUP[4:], "done"]
    folded = fold_startup(log)
    assert folded[0] == "python train.py" and folded[2] == "step 1 loss=0.9" and folded[4] == "done"
    first, second = folded[1], folded[3]
    assert isinstance(first, Fold) and first.lines == tuple(STARTUP[:4])
    assert first.marker == "TensorFlow start-up messages (4 lines)"
    assert isinstance(second, Fold) and second.marker == "TensorFlow start-up messages (3 lines)"
    assert folded_text(log) == [
        "python train.py",
        "[TensorFlow start-up messages (4 lines)]",
        "step 1 loss=0.9",
        "[TensorFlow start-up messages (3 lines)]",
        "done",
    ]
    assert fold_startup(STARTUP[2:3])[0].marker == "TensorFlow start-up messages (1 line)"


def test_a_live_log_folds_a_run_once_it_ends_and_a_cell_shows_it_as_one_dim_marker():
    from kubeflow_jupyter.logfold import fold_bundle, fold_stream

    seen: list[object] = []

    def live():
        yield "python train.py"
        yield from STARTUP[:2]
        assert seen == ["python train.py"]  # the run is held back, not shown line by line
        yield "step 1"

    for item in fold_stream(live()):
        seen.append(item)
    assert seen == ["python train.py", Fold(tuple(STARTUP[:2])), "step 1"]
    bundle = fold_bundle(seen[1])
    assert bundle["text/plain"] == "[TensorFlow start-up messages (2 lines)]"
    assert bundle["text/html"].startswith('<pre style="margin:0"><details') and "cudart" not in bundle["text/plain"]


def test_other_glog_lines_and_the_programs_own_output_are_not_folded():
    kept = [
        "W0000 00:00:1796100352.1   10497 op_level_cost_estimator.cc:699] Error in PredictCost() for the op",
        "I0000 00:00:1796100352.2   10497 local_rendezvous.cc:405] Local rendezvous is aborting with status: OUT_OF_RANGE",
        "oneDNN is great",  # the words alone are not the line
        "loss=0.0370",
        "",
    ]
    assert fold_startup(kept) == kept and not any(is_startup_line(line) for line in kept)
    assert all(is_startup_line(line) for line in STARTUP)
    # TensorFlow before 2.16 wrote its time first
    assert is_startup_line(
        "2024-05-01 12:00:00.123456: I tensorflow/core/platform/cpu_feature_guard.cc:182] This TensorFlow binary"
    )


def test_the_html_view_shows_the_marker_and_keeps_the_raw_lines_behind_a_click():
    body = folded_html(["<start>", *STARTUP[:3], "a & b"])
    assert body.startswith("&lt;start&gt;") and body.endswith("a &amp; b")
    details = re.search(r"<details[^>]*><summary[^>]*>(.*?)</summary>(.*?)</details>", body, re.S)
    assert details.group(1) == "TensorFlow start-up messages (3 lines)"
    assert details.group(2).split("\n") == STARTUP[:3]  # nothing in them to escape
    assert "opacity" in body  # the marker is dim


# -- a missing extra ---------------------------------------------------------------------
def test_a_missing_extra_is_one_line_naming_the_command_exit_2_and_http_501(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)  # what an install without the extra has
    with pytest.raises(errors.MissingExtra) as caught:
        extras.require("tensorflow_serving.apis", "grpc", feature="the gRPC model client")
    said = str(caught.value)
    assert said == (
        "the gRPC model client needs tensorflow-serving-api, which is not installed: "
        "pip install 'kubeflow-jupyter[tensorflow]'"
    )
    assert errors.exit_code(caught.value) == 2 and errors.http_status(caught.value) == 501
    assert caught.value._render_traceback_() == [f"MissingExtra: {said}"]


def test_cli_serve_without_the_extra_says_so_before_looking_at_the_path(monkeypatch, capsys):
    from kubeflow_jupyter.cli import main

    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)
    assert main(["serve", "/no/such/dir", "--model-name", "m"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "kubeflow-jupyter: kubeflow-jupyter serve needs tensorflow-serving-api, which is not installed: "
        "pip install 'kubeflow-jupyter[tensorflow]'"
    ]


def test_model_serve_in_a_notebook_without_the_extra_fails_with_one_line(monkeypatch, tmp_path):
    from kubeflow_jupyter.magics.model import ModelMagics

    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)
    shell = InteractiveShell.instance()
    shell.register_magics(ModelMagics(shell))
    with capture_output() as captured:
        result = shell.run_cell(f"%model serve {tmp_path} --model-name m")
    assert type(result.error_in_exec).__name__ == "MissingExtra"
    assert (captured.stdout + captured.stderr).strip() == (
        "MissingExtra: %model serve needs tensorflow-serving-api, which is not installed: "
        "pip install 'kubeflow-jupyter[tensorflow]'"
    )


def test_the_rest_client_imports_no_tensorflow():
    """The REST path of %model predict / ModelQuery: JSON and base64 over urllib, numpy arrays."""
    import subprocess

    code = (
        "import sys\n"
        "for name in ('tensorflow', 'tensorflow_serving', 'grpc'):\n"
        "    sys.modules[name] = None\n"
        "from kubeflow_jupyter.serving.client import PredictionClient\n"
        "from kubeflow_jupyter.serving.inception import classify_images\n"
        "from kubeflow_jupyter.magics.model import ModelMagics\n"
        "from kubeflow_jupyter.widgets.model_query import ModelQuery\n"
        "from kubeflow_jupyter.serving import client\n"
        "client._json_tensor(client._as_array([b'x']))\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


# -- %model predict: images checked here, the model chosen from the server -----------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def shell():
    from kubeflow_jupyter.magics.model import ModelMagics

    shell = InteractiveShell.instance()
    shell.register_magics(ModelMagics(shell))
    return shell


def _refused(shell, line: str) -> tuple[BaseException, str]:
    with capture_output() as captured:
        result = shell.run_cell(f"%model {line}")
    assert result.error_in_exec is not None
    shown = (captured.stdout + captured.stderr).strip()
    assert "Traceback" not in shown and len(shown.splitlines()) == 1, shown
    return result.error_in_exec, shown


def test_predict_refuses_non_images_before_sending_naming_each_file(shell, tmp_path, images):
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "red.jpg").write_bytes(images["red.jpg"])
    # Nothing listens there: had anything been sent, the error would be "no model server answers".
    nobody = f"127.0.0.1:{_free_port()}"
    error, shown = _refused(
        shell,
        f"predict {tmp_path}/red.jpg {tmp_path}/notes.txt {tmp_path}/empty.png {tmp_path}/gone.jpg --server {nobody} --rest",
    )
    assert isinstance(error, ImageError)
    assert shown.startswith("ImageError: 3 images refused, nothing was sent: ")
    assert f"'{tmp_path}/notes.txt' is not an image (expected JPEG, PNG, GIF, BMP or WebP)" in shown
    assert f"'{tmp_path}/empty.png' is an empty file" in shown
    assert f"cannot read image '{tmp_path}/gone.jpg': No such file or directory" in shown
    assert "red.jpg" not in shown and "no model server" not in shown
    error, shown = _refused(shell, f"predict {tmp_path}/notes.txt --server {nobody}")
    assert shown == (
        f"ImageError: '{tmp_path}/notes.txt' is not an image (expected JPEG, PNG, GIF, BMP or WebP); nothing was sent"
    )


class _Asks:
    """A client whose server says what it serves (kubeflow-jupyter serve) or not (TF Serving: None)."""

    server = "models:8500"

    def __init__(self, served):
        self.served = served

    def served_models(self):
        return self.served


def test_the_default_model_is_the_servers_only_one_and_several_ask_for_model():
    assert choose_model(_Asks({"digits": [1]})) == "digits"
    assert choose_model(_Asks(None)) == "inception"  # a TF Serving that does not say: the seed's name
    with pytest.raises(errors.UsageError) as caught:
        choose_model(_Asks({"digits": [1], "mnist": [2, 3]}))
    assert str(caught.value) == (
        "the model server at models:8500 serves 2 models ('digits', 'mnist'): choose one with --model NAME"
    )


@pytest.mark.tensorflow
def test_predict_status_and_metadata_default_to_the_model_the_server_serves(shell, tmp_path, model_base, images):
    """`make run` serves `digits` from another process: no --model needed."""
    from kubeflow_jupyter.serving.client import PredictionClient
    from kubeflow_jupyter.serving.server import ModelServer

    digits = ModelServer(model_base, "digits", port=0, rest_port=0).start()
    try:
        (tmp_path / "red.jpg").write_bytes(images["red.jpg"])
        with PredictionClient(f"127.0.0.1:{digits.rest_port}", rest=True) as client:
            assert client.served_models() == {"digits": [1]}
        for server in (f"--server 127.0.0.1:{digits.port}", f"--server 127.0.0.1:{digits.rest_port} --rest"):
            with capture_output() as captured:
                shell.run_line_magic("model", f"predict {tmp_path}/red.jpg {server}")
                shell.run_line_magic("model", f"status {server}")
            assert captured.outputs[0].data["text/plain"].startswith("red.jpg:\n  1. "), captured.stderr
            assert "model 'digits' on" in captured.stdout
            assert "version 1: AVAILABLE" in captured.stdout and captured.stderr == ""
    finally:
        digits.stop()


# -- the theme: JupyterLab's colours, light or dark ----------------------------------------------
TOP = [("tabby, tabby cat", 9.5), ("tiger cat", 8.0), ("Egyptian cat", 7.0)]


def test_predict_chart_labels_follow_the_text_colour_and_nothing_is_a_fixed_grey(images):
    page = ImagePrediction("red.jpg", images["red.jpg"], TOP)._repr_html_()
    labels = re.findall(r"<text [^>]*>", page)
    assert len(labels) == 3 and all("fill='currentColor'" in label for label in labels)
    assert "var(--jp-brand-color1" in page and "var(--jp-ui-font-color2" in page
    # colours only as fallbacks of theme variables
    assert not re.search(r"(?<!,)#[0-9a-fA-F]{3,6}\b", page.replace("&#", "")), page


def test_model_query_errors_and_results_render_like_predict(images):
    from kubeflow_jupyter.widgets.model_query import ModelQuery

    box = error_html("no model named 'x'")
    assert "var(--jp-rendermime-error-background" in box and "var(--jp-content-font-color1" in box
    assert "pink" not in box and "#b91c1c" not in box

    widget = ModelQuery(server=f"127.0.0.1:{_free_port()}", rest=True)
    assert widget.model.value == "" and "jp-RenderedHTMLCommon" in widget.result._dom_classes
    widget.classify([("notes.txt", b"hello"), ("red.jpg", images["red.jpg"])])
    assert widget.result.value == error_html(
        "'notes.txt' is not an image (expected JPEG, PNG, GIF, BMP or WebP); nothing was sent"
    )
    widget.classify([("red.jpg", images["red.jpg"])])  # nobody listens: the same error box
    assert widget.result.value.startswith("<pre class='kfj-error'") and "no model server answers" in widget.result.value


@pytest.mark.tensorflow
def test_model_query_result_is_the_predict_display(grpc_address, images):
    from kubeflow_jupyter.serving.inception import classify_images
    from kubeflow_jupyter.widgets.model_query import ModelQuery

    widget = ModelQuery(server=grpc_address)  # the server serves 'inception' only: no model to type
    widget.classify([("red.jpg", images["red.jpg"])])
    top = classify_images(images["red.jpg"], server=grpc_address)[0]
    assert widget.result.value == ImagePrediction("red.jpg", images["red.jpg"], top)._repr_html_()
    assert top_table_html(top) in widget.result.value


# -- the JobMonitor --------------------------------------------------------------------------
def _cond(type_: str, status: str, when: str, reason: str = "") -> Condition:
    return Condition(type_, status, reason or f"TFJob{type_}", "", when, when)


RUNNING = JobSnapshot(
    "mnist",
    backend="fake",
    uid="u1",
    resource_version="1",
    start_time="2026-01-01T00:00:01Z",
    conditions=[_cond("Created", "True", "2026-01-01T00:00:00Z"), _cond("Running", "True", "2026-01-01T00:00:01Z")],
    replicas=[ReplicaState("Chief", 0, "Running"), ReplicaState("PS", 0, "Running")],
)
SUCCEEDED = replace(
    RUNNING,
    resource_version="2",
    completion_time="2026-01-01T00:01:00Z",
    conditions=[
        RUNNING.conditions[0],
        _cond("Running", "False", "2026-01-01T00:01:00Z"),
        _cond("Succeeded", "True", "2026-01-01T00:01:00Z"),
    ],
    replicas=[
        ReplicaState("Chief", 0, "Succeeded", exit_code=0),
        ReplicaState("PS", 0, "Stopped", exit_code=143, message="stopped by the local runner: the job has finished"),
    ],
)


class _FakeClient:
    backend_name, namespace = "fake", "default"

    def __init__(self, snapshots, log):
        self.snapshots, self.log, self.gone = snapshots, log, False

    def watch(self, name, stop=None):
        yield from self.snapshots  # then ends: the job finished

    def logs(self, name, replica, *, follow=False, tail=None, stop=None):
        yield from self.log

    def get(self, name):
        if self.gone:
            raise errors.JobNotFound(name)
        return self.snapshots[-1]

    def delete(self, name):
        if self.gone:
            raise errors.JobNotFound(name)
        self.gone = True


def _eventually(check, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture()
def finished_monitor(monkeypatch):
    pytest.importorskip("ipywidgets")
    from kubeflow_jupyter.widgets import job_monitor

    monkeypatch.setattr(job_monitor, "GONE_CHECK_SECONDS", 0.1)
    client = _FakeClient([RUNNING, SUCCEEDED], ["chief starts", *STARTUP[:5], "loss=0.0370"])
    monitor = job_monitor.JobMonitor(client, "mnist")
    _eventually(lambda: monitor.state == "Succeeded", "the final state")
    yield monitor, client
    monitor.close()


def test_monitor_says_why_a_replica_stopped_and_shows_current_conditions_only(finished_monitor):
    monitor, _ = finished_monitor
    table = monitor.replica_table.value
    assert (
        ">stopped when the job finished</span>" in table and "exit code 143" in table
    )  # the code stays in the tooltip
    conditions = monitor.conditions.value
    current, _, superseded = conditions.partition("<details")
    assert "<b>Created</b>" in current and "<b>Succeeded</b>" in current
    assert "Running" not in current and "(False)" not in current
    assert "2 superseded</summary>" in superseded
    assert superseded.index("<b>Running</b> TFJobRunning") < superseded.index("<b>Running</b> (False)")


def test_monitor_log_pane_folds_tensorflow_startup_lines(finished_monitor):
    monitor, _ = finished_monitor
    _eventually(lambda: "loss=0.0370" in monitor.log_pane.widget.value, "the log")
    pane = monitor.log_pane.widget.value
    assert "<summary" in pane and "TensorFlow start-up messages (5 lines)</summary>" in pane
    assert pane.index("chief starts") < pane.index("<details") < pane.index("loss=0.0370")
    assert "cudart_stub.cc:31] Could not find cuda drivers" in pane  # the raw lines, behind the marker
    assert monitor.log_pane.text().splitlines()[1] == STARTUP[0]  # the lines themselves are untouched


def test_delete_is_disabled_once_the_job_is_deleted_elsewhere(finished_monitor):
    monitor, client = finished_monitor
    assert not monitor.delete_button.disabled
    client.gone = True  # `kubeflow-jupyter delete mnist` in a terminal
    _eventually(lambda: monitor.delete_button.disabled, "the Delete button to be disabled")
    assert monitor.state == "Deleted" and "kfj-badge-deleted" in monitor.header.value


def test_delete_of_a_job_already_gone_says_so_and_disables_the_button(monkeypatch):
    pytest.importorskip("ipywidgets")
    from kubeflow_jupyter.widgets import job_monitor

    monkeypatch.setattr(job_monitor, "GONE_CHECK_SECONDS", 3600)
    client = _FakeClient([RUNNING, SUCCEEDED], [])
    monitor = job_monitor.JobMonitor(client, "mnist")
    try:
        _eventually(lambda: monitor.state == "Succeeded", "the final state")
        client.gone = True
        monitor.delete_button.click()
        monitor.confirm_button.click()
        assert monitor.delete_button.disabled and monitor.state == "Deleted"
        assert "was already deleted" in monitor.message.value and "kubeflow-jupyter list" not in monitor.message.value
    finally:
        monitor.close()


# -- quiet cells -----------------------------------------------------------------------------
@pytest.mark.tensorflow
def test_a_kernel_serving_a_model_shows_no_tensorflow_startup_line(model_base, monkeypatch, tmp_path):
    """%load_ext, %model serve, status, metadata in a fresh kernel with no TF_* variable set:
    the kernel imports TensorFlow (the gRPC client) and the server's process starts it."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    for name in ("TF_CPP_MIN_LOG_LEVEL", "GRPC_VERBOSITY", "GLOG_minloglevel"):
        monkeypatch.delenv(name, raising=False)  # the kernel inherits this environment
    monkeypatch.setenv("KUBEFLOW_JUPYTER_HOME", str(tmp_path / "home"))
    sources = [
        "%load_ext kubeflow_jupyter",
        f"%model serve {model_base} --model-name digits --port 0 --rest-port 0",
        "%model status",
        "%model metadata",
        "%model status --rest",
        "import os, sys\nprint('tensorflow' in sys.modules, os.environ.get('TF_CPP_MIN_LOG_LEVEL'))",
        "%model stop",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    texts = []
    for cell in nb.cells:
        for out in cell.outputs:
            assert out["output_type"] != "error", out
            assert out.get("name") != "stderr", (cell.source, out["text"])
            texts.append(out.get("text", "") + str(out.get("data", {}).get("text/plain", "")))
    shown = "\n".join(texts)
    assert not any(word in shown for word in STARTUP_WORDS), shown
    assert not any(is_startup_line(line) for line in shown.splitlines()), shown
    assert "serving 'digits'" in shown and "version 1: AVAILABLE" in shown and "predict_images:" in shown
    assert "True 2" in shown  # TensorFlow did load in the kernel (gRPC), quietly
