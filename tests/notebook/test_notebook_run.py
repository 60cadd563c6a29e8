"""``%%tfjob run`` in a real Jupyter kernel (nbclient) on the real local backend: the example
notebook (distributed training with ParameterServerStrategy), then cells shaped like a user's:
a TF_CONFIG cell on chief + 2 workers + PS, a cell raising on worker-1 only, --files with a
helper beside the notebook, ``TFJobClient().run(fn, 10, workers=1)``, a refusal, a dry run."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
from support.outputs import text_of

nbformat = pytest.importorskip("nbformat")
from notebook_helpers import execute_notebook  # noqa: E402

pytestmark = pytest.mark.tensorflow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "03-run-a-cell.ipynb"

SCRIPTED = [
    "%%tfjob run --chief --workers 2 --ps 1\n"
    "import json, os\n"
    "config = json.loads(os.environ['TF_CONFIG'])\n"
    "print('on', config['task']['type'])\n"
    "{'task': config['task'], 'cluster': {k: len(v) for k, v in config['cluster'].items()}}",
    "first = _\nfrom kubeflow_jupyter.client import TFJobClient\nfrom kubeflow_jupyter.handle import TFJobHandle\n"
    "fresh = TFJobHandle(TFJobClient(), _tfjob_name).result()\nfresh == first",
    "%%tfjob run --workers 3\n"
    "import json, os, time\n"
    "task = json.loads(os.environ['TF_CONFIG'])['task']\n"
    "def check(task):\n"
    "    if task['index'] == 1:\n"
    "        raise ValueError(f'bad shard {task[\"index\"]}')\n"
    "check(task)\n"
    "time.sleep(2)\n"
    "task",
    "%%tfjob run --files mine.py\nimport mine\nmine.answer()",
    "from kubeflow_jupyter.client import TFJobClient\n\n\ndef times(x, k=3):\n    return x * k\n\n\n"
    "TFJobClient().run(times, 10, workers=1).result()",
    "%%tfjob run\n%time 1 + 1",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    work = tmp_path_factory.mktemp("run-notebook")
    shutil.copy(EXAMPLE, work / EXAMPLE.name)
    shutil.copytree(REPO / "examples" / "run_helpers", work / "run_helpers")
    (work / "mine.py").write_text("def answer():\n    return 42\n")
    nb = nbformat.read(EXAMPLE, as_version=4)
    n_example = len(nb.cells)
    # _tfjob_name: the name of the job the previous %%tfjob run created (from the magic's last job).
    scripted = [SCRIPTED[0], "_tfjob_name = get_ipython().find_magic('tfjob').__self__.last_job.name", *SCRIPTED[1:]]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in scripted]
    execute_notebook(nb, work, tmp_path_factory.mktemp("kfj-run-home"), allow_errors=True)
    return nb.cells[:n_example], nb.cells[n_example:], work


def errors_of(cell) -> list[dict]:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def result_of(cell) -> str:
    return "".join(
        o["data"].get("text/plain", "") for o in cell.get("outputs", []) if o.get("output_type") == "execute_result"
    )


def test_the_example_trains_on_chief_worker_ps_and_returns_the_accuracy(executed):
    example, _, work = executed
    code = [c for c in example if c.cell_type == "code"]
    assert [errors_of(c) for c in code] == [[] for _ in code], [errors_of(c) for c in code]
    train = next(c for c in code if c.source.startswith("%%tfjob run --chief --workers 1 --ps 1"))
    accuracy = float(result_of(train))
    assert 0.8 < accuracy <= 1.0
    assert "test accuracy" in text_of(train)  # the chief's output streamed into the cell
    assert "@@kfj-result" not in text_of(train)  # the frames are hidden
    assert (work / "models" / "digits-run.keras").is_file()
    dry = next(c for c in code if "--dry-run" in c.source)
    assert "nothing was created" in text_of(dry) and "kind: TFJob" in text_of(dry)
    listed = next(c for c in code if c.source.startswith("%tfjob list -o wide"))
    assert "DESCRIPTION" in text_of(listed) and "from run_helpers import digits_ps" in text_of(listed)


def test_tf_config_cell_result_is_out_n_and_equal_from_a_fresh_handle(executed):
    _, cells, _ = executed
    tf_config, _name, fresh, *_ = cells
    assert errors_of(tf_config) == []
    assert ast.literal_eval(result_of(tf_config)) == {
        "task": {"type": "chief", "index": 0},
        "cluster": {"chief": 1, "ps": 1, "worker": 2},
    }
    assert "on chief" in text_of(tf_config)
    assert result_of(fresh) == "True"


def test_a_cell_raising_on_one_worker_fails_naming_it(executed):
    _, cells, _ = executed
    raising = cells[3]
    (error,) = errors_of(raising)
    assert error["ename"] == "RemoteValueError"
    shown = "\n".join(error["traceback"])
    assert shown.splitlines()[0] == "worker-1 raised ValueError: bad shard 1"
    assert "in check" in shown and "bootstrap.py" not in shown


def test_files_helper_and_client_run(executed):
    _, cells, _ = executed
    assert result_of(cells[4]) == "42"
    assert result_of(cells[5]) == "30"


def test_ipython_syntax_is_refused_in_one_line(executed):
    _, cells, _ = executed
    (error,) = errors_of(cells[6])
    assert error["ename"] == "PayloadError"
    assert error["traceback"] == [
        "PayloadError: line 1: '%time 1 + 1' is IPython syntax, which does not run on the replicas (plain Python there): use Python (e.g. subprocess.run for a shell command)"
    ]
