"""The JobMonitor widget in a real JupyterLab, driven in Debian's Chromium while a job runs.

A notebook runs `%%tfjob submit --watch` on the local backend; the chief holds until the
test lets it finish, so the running state is looked at deterministically. Screenshots
go to test-artifacts/notebook/ (gitignored) for a human look.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.lab_browser import chromium, running_lab

nbformat = pytest.importorskip("nbformat")


pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "notebook"
WAIT_MS = 90_000

PROGRAM = """\
import json, os, time
task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
role = task.get("type", "chief")
if role == "ps":
    print("ps serving", flush=True)
    time.sleep(3600)
for step in range(40):
    print(f"{role} step {step}", flush=True)
if role == "chief":
    print("chief waiting for the test", flush=True)
    while not os.path.exists("go"):
        time.sleep(0.05)
    print("chief done", flush=True)
"""

JOB = """\
apiVersion: kubeflow.org/v1
kind: TFJob
metadata:
  name: browser-demo
spec:
  tfReplicaSpecs:
""" + "".join(
    f"""\
    {rtype}:
      replicas: {n}
      template:
        spec:
          containers:
            - name: tensorflow
              image: tensorflow/tensorflow:2.21.0
"""
    for rtype, n in (("Chief", 1), ("Worker", 2), ("PS", 1))
)

NEWEST_LINE_VISIBLE = """() => {
  const box = document.querySelector('.kfj-log');
  const text = box.querySelector('pre').firstChild;
  const range = document.createRange();
  range.setStart(text, text.length - 5);
  range.setEnd(text, text.length);
  const line = range.getBoundingClientRect(), view = box.getBoundingClientRect();
  return box.scrollHeight > box.clientHeight && line.top >= view.top && line.bottom <= view.bottom + 1;
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("nb-root")
    (root / "program.py").write_text(PROGRAM)
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%load_ext kubeflow_jupyter"),
            nbformat.v4.new_code_cell('%%tfjob submit --watch --command "python program.py"\n' + JOB),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}},
    )
    nbformat.write(notebook, root / "monitor.ipynb")
    with running_lab(root, tmp_path_factory.mktemp("kfj-home-nb"), tmp_path_factory.mktemp("lab-work-nb")) as lab:
        yield lab


def test_notebook_browser_monitor_live_then_final_then_delete(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p, chromium(p) as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{lab.url}lab/tree/monitor.ipynb?token={lab.token}")
        page.get_by_text("| Idle").wait_for()  # the kernel is up
        page.locator(".jp-Cell .jp-InputArea-editor").first.click()
        page.keyboard.press("Escape")
        page.keyboard.press("Shift+Enter")
        page.keyboard.press("Shift+Enter")

        monitor = page.locator(".kfj-job-monitor")
        monitor.locator(".kfj-header .kfj-badge-running").wait_for()
        log = monitor.locator(".kfj-log")
        log.get_by_text("chief waiting for the test").wait_for()
        monitor.scroll_into_view_if_needed()
        assert "TFJob browser-demo" in monitor.locator(".kfj-header").inner_text()
        assert page.evaluate(NEWEST_LINE_VISIBLE), "the log pane should show its newest line"
        assert monitor.locator("select").input_value() == "chief-0"
        monitor.screenshot(path=ARTIFACTS / "01-monitor-running.png")

        (lab.root / "go").touch()  # let the chief finish
        monitor.locator(".kfj-header .kfj-badge-succeeded").wait_for()
        monitor.get_by_text("4/4 replicas").wait_for()
        log.get_by_text("chief done").wait_for()
        assert "Succeeded" in monitor.locator(".kfj-conditions").inner_text()
        monitor.screenshot(path=ARTIFACTS / "02-monitor-succeeded.png")

        monitor.get_by_role("button", name="Delete job").click()
        confirm = monitor.get_by_text("Delete TFJob browser-demo and stop all its replicas?")
        confirm.wait_for()
        monitor.screenshot(path=ARTIFACTS / "03-monitor-confirm-delete.png")
        monitor.get_by_role("button", name="Cancel").click()
        confirm.wait_for(state="hidden")
        assert lab.api("GET", "jobs/browser-demo")[0] == 200

        monitor.get_by_role("button", name="Delete job").click()
        monitor.get_by_role("button", name="Yes, delete").click()
        monitor.locator(".kfj-header .kfj-badge-deleted").wait_for()
        assert lab.api("GET", "jobs/browser-demo")[0] == 404
        monitor.screenshot(path=ARTIFACTS / "04-monitor-deleted.png")
        assert errors == []
