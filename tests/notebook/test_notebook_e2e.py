"""End to end in a real Jupyter kernel (nbclient), on the real local backend with real TensorFlow.

One kernel session runs examples/01-tfjob-quickstart.ipynb (cwd examples/, as JupyterLab
would) and then a scripted notebook shaped like a user's: `%load_ext`, `%%tfjob submit`
of the seed's YAML with `--command` relative to the repository root, `%tfjob wait`,
`%tfjob logs --replica master-0`, `%tfjob delete`. The tests below read its outputs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.outputs import stderr_of, text_of

nbformat = pytest.importorskip("nbformat")
from notebook_helpers import execute_notebook  # noqa: E402

pytestmark = pytest.mark.tensorflow

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "01-tfjob-quickstart.ipynb"
SEED_YAML = (REPO / "examples" / "tfjob-legacy.yaml").read_text()

# The last row of every Result matrix: 90..99 squared, as the seed's walkthrough prints it.
LAST_ROW = "[8100 8281 8464 8649 8836 9025 9216 9409 9604 9801]]"

SCRIPTED = [
    "%cd {repo}",
    "%load_ext kubeflow_jupyter",
    '%%tfjob submit --command "python examples/tf_sample/tf_sample.py"\n' + SEED_YAML,
    "%tfjob wait",
    "%tfjob logs --replica master-0",
    "%tfjob delete",
    "%tfjob list",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The quickstart's cells followed by the scripted ones, executed in one kernel."""
    nb = nbformat.read(QUICKSTART, as_version=4)
    n_quickstart = len(nb.cells)
    nb.cells += [nbformat.v4.new_code_cell(src.format(repo=REPO)) for src in SCRIPTED]
    # cwd examples/, as JupyterLab would
    execute_notebook(nb, QUICKSTART.parent, tmp_path_factory.mktemp("kfj-notebook-home"), store_widget_state=True)
    return nb.cells[:n_quickstart], nb.cells[n_quickstart:], nb


def code_cells(cells):
    return [c for c in cells if c.cell_type == "code"]


def find(cells, source_start: str):
    return next(c for c in cells if c.cell_type == "code" and c.source.startswith(source_start))


def test_quickstart_runs_clean_and_shows_the_result_matrices(executed):
    quickstart, _, _ = executed
    for cell in code_cells(quickstart):
        assert "Traceback" not in text_of(cell), cell.source
        assert stderr_of(cell) == "", (cell.source, stderr_of(cell))
    submit = find(quickstart, "%%tfjob submit --watch")
    assert "converted the seed's tensorflow.org/v1alpha1 TfJob" in text_of(submit)
    assert "tfjob 'example-job' created (local backend" in text_of(submit)
    wait = find(quickstart, "%tfjob wait")
    assert "4/4 replicas finished · Succeeded" in text_of(wait)
    master_log = text_of(find(quickstart, "%tfjob logs --replica master-0"))
    assert master_log.count("INFO:root:Result: [[   0    1    4    9   16   25   36   49   64   81]") == 4
    assert master_log.count(LAST_ROW) == 4
    assert "tfjob 'example-job' deleted" in text_of(find(quickstart, "%tfjob delete"))


def test_quickstart_v1_chief_worker_ps_job_through_the_handle(executed):
    quickstart, _, _ = executed
    assert "tfjob 'example-job-v1' created" in text_of(find(quickstart, "%%tfjob submit --command"))
    final = text_of(find(quickstart, "final = job.wait"))
    assert re.search(r"example-job-v1\s+Succeeded", final)
    assert re.search(r"chief-0\s+Chief\s+0\s+Succeeded\s+0\s+0", final)
    results = text_of(find(quickstart, "chief_log = job.logs"))
    assert "4 Result matrices" in results and LAST_ROW in results
    assert "No TFJobs." in text_of(find(quickstart, "job.delete()"))


def test_job_monitor_followed_the_jobs_and_its_threads_ended(executed):
    quickstart, _, nb = executed
    joined = text_of(find(quickstart, "monitor.join"))
    assert joined.strip() == "('Succeeded', '4/4 replicas finished', False)"
    # What the monitors' threads pushed reached the frontend side as widget state
    # (nbclient records comm messages like a browser receives them): live log lines
    # and states later than the first snapshot.
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    html_values = [m["state"].get("value", "") for m in state.values() if m["model_name"] == "HTMLModel"]
    headers = [v for v in html_values if "kfj-header" in v]
    assert len(headers) == 2
    # (Deleted: the quickstart deletes its job at the end, and a monitor notices a job deleted
    # after it finished.)
    later = ("kfj-badge-running", "kfj-badge-succeeded", "kfj-badge-deleted")
    assert all(any(badge in v for badge in later) for v in headers)
    logs = [v for v in html_values if 'class="kfj-log"' in v]
    assert len(logs) == 2 and all("INFO:root:Tensorflow version" in v for v in logs)


def test_scripted_user_notebook_submit_wait_logs_delete(executed):
    _, scripted, _ = executed
    submit, wait, logs, delete, listing = scripted[2:]
    for cell in scripted[1:]:
        assert "Traceback" not in text_of(cell), cell.source
    assert "converted" in text_of(submit) and "tfjob 'example-job' created" in text_of(submit)
    assert "Succeeded" in text_of(wait)
    assert text_of(logs).count(LAST_ROW) == 4
    assert "tfjob 'example-job' deleted" in text_of(delete)
    assert "No TFJobs." in text_of(listing)
