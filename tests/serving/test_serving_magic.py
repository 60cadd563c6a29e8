"""``%model`` in a real IPython shell (server started by the magic as a process) and the ModelQuery widget."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from kubeflow_jupyter.magics.model import ModelMagics
from kubeflow_jupyter.serving.inception import classify_images

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def shell():
    shell = InteractiveShell.instance()
    shell.register_magics(ModelMagics(shell))
    yield shell
    shell.run_line_magic("model", "stop")


def _run(shell, line: str):
    with capture_output() as captured:
        shell.run_line_magic("model", line)
    return captured


def _refused(shell, line: str) -> tuple[BaseException, str]:
    """A %model cell that must fail: the error and what the cell showed (one line, no traceback)."""
    with capture_output() as captured:
        result = shell.run_cell(f"%model {line}")
    assert result.error_in_exec is not None, "the cell fails, so Run All stops there"
    shown = captured.stdout + captured.stderr
    assert "Traceback" not in shown and len(shown.strip().splitlines()) == 1, shown
    return result.error_in_exec, shown.strip()


def test_model_serve_predict_status_metadata_stop(shell, model_base, images, tmp_path):
    served = _run(shell, f"serve {model_base} --model-name inception --port 0 --rest-port 0")
    assert "serving 'inception'" in served.stdout and "stops with the kernel" in served.stdout, served.stderr
    from kubeflow_jupyter.serving.background import running_servers

    (server,) = running_servers()
    for name in ("red.jpg", "blue.png"):
        (tmp_path / name).write_bytes(images[name])

    shown = _run(shell, f"predict {tmp_path}/*.* --signature predict_images")  # a glob, expanded by the magic
    assert shown.stderr == ""
    expected = classify_images([images["blue.png"], images["red.jpg"]], server=server.grpc_address)
    assert len(shown.outputs) == 2
    for output, top in zip(shown.outputs, expected, strict=True):
        page = output.data["text/html"]
        assert "<img src='data:image/" in page and "<svg" in page and page.count("<tr><td>") == 5
        assert all(cls.split(",")[0] in page for cls, _ in top)
        assert top[0][0] in output.data["text/plain"]
    assert "image/png" in shown.outputs[0].data["text/html"]  # blue.png comes first, shown as PNG

    over_rest = _run(shell, f"predict {tmp_path}/red.jpg --rest")
    assert over_rest.outputs[0].data["text/plain"] == shown.outputs[1].data["text/plain"]

    status = _run(shell, "status")
    assert "version 1: AVAILABLE" in status.stdout
    metadata = _run(shell, "metadata")
    assert "predict_images:" in metadata.stdout and "in  images: string [?]" in metadata.stdout
    assert "out scores: float [?,5]" in metadata.stdout

    stopped = _run(shell, "stop")
    assert "stopped the server of 'inception'" in stopped.stdout and not server.running


def test_model_errors_fail_the_cell_with_one_line(shell, tmp_path, grpc_address, images):
    (tmp_path / "red.jpg").write_bytes(images["red.jpg"])
    error, shown = _refused(shell, f"predict {tmp_path}/missing.jpg --server {grpc_address}")
    assert type(error).__name__ == "ImageError" and "cannot read image" in shown
    error, shown = _refused(shell, f"predict {tmp_path}/red.jpg --server {grpc_address} --model resnet")
    assert shown == f"ModelNotFound: no model named 'resnet' on {grpc_address}; it serves 'inception' (versions 1)"
    error, shown = _refused(shell, "frobnicate")
    assert shown.startswith("UsageError: %model: ") and "invalid choice" in shown and "%model?" in shown
    error, shown = _refused(shell, "serve")
    assert type(error).__name__ == "UsageError" and "--model-name NAME" in shown


def test_help_lists_the_actions_and_options():
    doc = ModelMagics.model.__doc__
    for word in ("predict", "serve", "status", "metadata", "--server", "--model", "--signature", "--version", "--rest"):
        assert word in doc


def test_model_query_widget_classifies_uploads(grpc_address, images):
    from kubeflow_jupyter.widgets.model_query import ModelQuery

    widget = ModelQuery(server=grpc_address)
    # what the browser sends when a file is picked (the widget's own deserializer runs)
    widget.upload.set_state(
        {
            "value": [
                {
                    "name": "red.jpg",
                    "type": "image/jpeg",
                    "size": len(images["red.jpg"]),
                    "content": memoryview(images["red.jpg"]),
                    "last_modified": 0,
                }
            ]
        }
    )
    top = classify_images(images["red.jpg"], server=grpc_address)[0]
    assert "<svg" in widget.result.value and top[0][0].split(",")[0] in widget.result.value
    widget.model.value = "resnet"
    widget.classify([("red.jpg", images["red.jpg"])])
    assert "no model named &#x27;resnet&#x27;" in widget.result.value
