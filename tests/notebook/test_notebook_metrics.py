"""``%tfjob metrics`` and ``%tfjob tensorboard`` in a real Jupyter kernel (nbclient), local backend:
a chief + worker job whose chief prints ``step=… loss=… accuracy=…`` with ``report()`` and writes a
``val_loss`` scalar with ``tf.summary`` into $TFJOB_LOGDIR."""

from __future__ import annotations

import ast
import sys

import pytest
from support.outputs import text_of

nbformat = pytest.importorskip("nbformat")
from notebook_helpers import chief_and_worker_yaml, execute_notebook  # noqa: E402

pytestmark = pytest.mark.tensorflow

STEPS = 8

TRAIN = f"""
import json, os
from kubeflow_jupyter import report

if json.loads(os.environ["TF_CONFIG"])["task"]["type"] == "chief":
    import tensorflow as tf

    with tf.summary.create_file_writer(os.environ["TFJOB_LOGDIR"]).as_default():
        for step in range({STEPS}):
            report(step, loss=1.0 / (step + 1), accuracy=step / 10)
            tf.summary.scalar("val_loss", 2.0 / (step + 1), step=step)
"""

JOB = f'%%tfjob submit --command "{sys.executable} train.py"\n' + chief_and_worker_yaml("nb-curves", "unused")

CELLS = [
    "%load_ext kubeflow_jupyter",
    JOB,
    "%tfjob wait --timeout 300",
    "df = %tfjob metrics nb-curves\ntype(df).__module__.split('.')[0], type(df).__name__",
    "{'columns': list(df.columns), 'rows': df.drop(columns='replica').values.tolist()}",
    "tb = %tfjob tensorboard nb-curves\ntb",
    "import json, time, urllib.request\n"
    "for _ in range(120):\n"
    "    tags = json.load(urllib.request.urlopen(tb.url + 'data/plugin/scalars/tags'))\n"
    "    if tags:\n"
    "        break\n"
    "    time.sleep(0.5)\n"
    "tags",
    "%tfjob delete nb-curves\ntb.alive",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    work = tmp_path_factory.mktemp("metrics-notebook")
    (work / "train.py").write_text(TRAIN)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    execute_notebook(nb, work, tmp_path_factory.mktemp("kfj-metrics-home"), timeout=300, allow_errors=True)
    return nb.cells


def result_of(cell) -> str:
    return "".join(o["data"].get("text/plain", "") for o in cell.outputs if o["output_type"] == "execute_result")


def test_metrics_is_a_dataframe_with_every_step_of_both_sources(executed):
    errors = [o for c in executed for o in c.outputs if o["output_type"] == "error"]
    assert errors == [], [e["evalue"] for e in errors]
    assert "Succeeded" in text_of(executed[2])
    assert ast.literal_eval(result_of(executed[3])) == ("pandas", "DataFrame")
    table = ast.literal_eval(result_of(executed[4]))
    assert table["columns"] == ["replica", "step", "loss", "accuracy", "val_loss"]
    rows = table["rows"]
    assert [r[0] for r in rows] == list(range(STEPS))
    assert [r[1] for r in rows] == [1.0 / (s + 1) for s in range(STEPS)]
    assert [r[2] for r in rows] == [s / 10 for s in range(STEPS)]
    assert [r[3] for r in rows] == pytest.approx([2.0 / (s + 1) for s in range(STEPS)], rel=1e-6)


def test_tensorboard_serves_the_val_loss_tag_and_stops_with_the_delete(executed):
    board = executed[5]
    html = "".join(o["data"].get("text/html", "") for o in board.outputs if o["output_type"] == "execute_result")
    assert "<iframe" in html and "http://127.0.0.1:" in html  # no Jupyter server: its own address
    tags = ast.literal_eval(result_of(executed[6]))
    assert "val_loss" in tags["."], tags
    assert result_of(executed[7]) == "False"
    assert "deleted" in text_of(executed[7])
