"""examples/02-train-serve-query.ipynb in a real kernel: TFJob (chief + worker + PS) -> %model serve -> %model predict.

This is the one end-to-end run of the digits example in the suite: real TensorFlow
processes train it, the local server (a background process) serves the export, and the
inline predictions are read back from the executed notebook.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.outputs import stderr_of, text_of

nbformat = pytest.importorskip("nbformat")
from nbclient import NotebookClient  # noqa: E402

pytestmark = pytest.mark.tensorflow

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "02-train-serve-query.ipynb"


def top5(text: str) -> list[tuple[str, float]]:
    """The ranked rows of a %model predict text display: [(class, score)] in order."""
    return [(m.group(1), float(m.group(2))) for m in re.finditer(r"^\s*\d\. (\S+)\s+(-?\d+\.\d+)\s*$", text, re.M)]


def find(cells, start: str):
    return next(c for c in cells if c.cell_type == "code" and c.source.startswith(start))


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with pytest.MonkeyPatch.context() as env:  # the kernel inherits this environment
        env.setenv("KUBEFLOW_JUPYTER_HOME", str(tmp_path_factory.mktemp("kfj-serving-nb-home")))
        env.setenv("KUBEFLOW_JUPYTER_BACKEND", "local")
        env.setenv("KUBECONFIG", "/dev/null")
        env.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
        NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            store_widget_state=True,
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        ).execute()
    return nb.cells


def test_notebook_trains_serves_and_classifies_the_digits(executed):
    for cell in executed:
        if cell.cell_type == "code" and "--model inception" not in cell.source:
            assert "Traceback" not in text_of(cell), cell.source
            assert stderr_of(cell) == "", (cell.source, stderr_of(cell))
    assert "Succeeded" in text_of(find(executed, "%tfjob wait"))
    assert "test accuracy" in text_of(find(executed, "%tfjob logs --replica chief-0"))
    assert re.search(
        r"serving 'digits' from .*: gRPC 127\.0\.0\.1:\d+, REST 127\.0\.0\.1:\d+",
        text_of(find(executed, "%model serve")),
    )
    assert "version 1: AVAILABLE" in text_of(find(executed, "%model status"))
    assert "predict_images:" in text_of(find(executed, "%model metadata"))

    predict = find(executed, "%model predict {digit_dir}")
    shown = [o for o in predict.outputs if o["output_type"] == "display_data"]
    assert len(shown) == 5
    right = 0
    for out in shown:
        html, text = out["data"]["text/html"], out["data"]["text/plain"]
        assert "<img src='data:image/png;base64," in html and "<svg" in html and html.count("<tr><td>") == 5
        label = re.search(r"label-(\d)\.png", text).group(1)
        top1 = re.search(r"1\. (\S+)", text).group(1)
        right += top1 == label
    assert right >= 4, [o["data"]["text/plain"] for o in shown]  # held-out digits, a trained model

    # REST runs the digit alone, gRPC ran it in a batch of five: same classes, scores equal to
    # float precision (a different batch size may take another summation order).
    rest = top5(text_of(find(executed, "%model predict {paths[0]} --rest")))
    grpc = top5(shown[0]["data"]["text/plain"])
    assert [c for c, _ in rest] == [c for c, _ in grpc] and len(rest) == 5
    assert all(abs(a[1] - b[1]) <= 2e-3 for a, b in zip(rest, grpc, strict=True)), (rest, grpc)
    assert re.search(
        r"no model named 'inception' on 127\.0\.0\.1:\d+; it serves 'digits' \(versions 1\)",
        text_of(find(executed, "%model predict {paths[0]} --model inception")),
    )
    assert "stopped the server of 'digits'" in text_of(find(executed, "%model stop"))
