"""The TFJobs sidebar in a real JupyterLab, driven in Debian's Chromium; screenshots in test-artifacts/lab/.

The tests share one Lab and one page and run in file order, as a user's session would.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.lab_browser import chromium, open_command_palette, running_lab, wait_for_lab
from support.manifests import tfjob_yaml

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "lab"
WAIT_MS = 60_000

GATED = (
    "import os, time\nprint('first line', flush=True)\n"
    "while not os.path.exists('go'): time.sleep(0.05)\nprint('second line')"
)


# pytest-jupyter's autouse fixtures (from conftest) manage an asyncio loop and an in-process
# server; these tests run JupyterLab as a subprocess and Playwright's sync API owns the loop.
@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    yield


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-root")
    (root / "quick.yaml").write_text(tfjob_yaml("quick"))
    (root / "gated.yaml").write_text(tfjob_yaml("gated", {"Worker": (1, "Never", GATED)}))
    bad = tfjob_yaml("bad").replace("restartPolicy: Never", "restartPolicy: Sometimes")
    (root / "bad.yaml").write_text(bad)
    home = tmp_path_factory.mktemp("kfj-home-lab")
    work = tmp_path_factory.mktemp("lab-work")
    with running_lab(root, home, work) as lab:
        yield lab


@pytest.fixture(scope="module")
def page(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p, chromium(p) as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.errors = []  # uncaught exceptions in the page
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto(f"{lab.url}lab?token={lab.token}")
        wait_for_lab(page)
        page.locator('.lm-TabBar-tab[data-id="kubeflow-jupyter-sidebar"]').wait_for()
        yield page
        context.close()


def open_sidebar(page, data_id: str) -> None:
    tab = page.locator(f'.jp-SideBar .lm-TabBar-tab[data-id="{data_id}"]')
    if "lm-mod-current" not in (tab.get_attribute("class") or ""):
        tab.click()


def sidebar(page):
    return page.locator("#kubeflow-jupyter-sidebar")


def right_click_file(page, name: str) -> None:
    open_sidebar(page, "filebrowser")
    item = page.locator(
        ".jp-DirListing-item", has=page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$"))
    )
    item.click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="Submit as TFJob").wait_for()


def from_palette(page, query: str, label, category: str) -> None:
    """Run a command from the command palette, as a user does: search, then click the one item
    whose label matches ``label``, which must be listed under the header ``category``."""
    palette = open_command_palette(page)
    palette.locator(".lm-CommandPalette-input").fill(query)
    with_label = page.locator(".lm-CommandPalette-itemLabel", has_text=label)
    item = palette.locator(".lm-CommandPalette-item", has=with_label)
    item.wait_for()  # exactly one (strict)
    header = item.locator("xpath=preceding-sibling::li[contains(@class, 'lm-CommandPalette-header')][1]")
    assert header.inner_text().strip() == category
    item.click()
    palette.wait_for(state="hidden")  # running a command closes the palette


def delete_all_jobs(lab) -> None:
    """Start from an empty namespace, also when pytest reruns a test that failed half-way."""
    for job in lab.api("GET", "jobs")[1]["jobs"]:
        lab.api("DELETE", f"jobs/{job['name']}")


def test_lab_ui_submit_from_the_file_browser_succeeds_shows_the_log_and_deletes(page, lab):
    delete_all_jobs(lab)
    open_sidebar(page, "kubeflow-jupyter-sidebar")
    empty = sidebar(page).locator(".kfj-empty")
    empty.get_by_text("No TFJobs yet").wait_for()
    assert "Submit as TFJob" in empty.inner_text()
    page.screenshot(path=ARTIFACTS / "01-empty-sidebar.png")

    right_click_file(page, "quick.yaml")
    page.screenshot(path=ARTIFACTS / "02-context-menu.png")
    page.locator(".lm-Menu-itemLabel", has_text="Submit as TFJob").click()
    # The dialog shows what will run, and where, before anything is created.
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".kfj-submit-body").wait_for()
    assert "quick" in dialog.inner_text() and str(lab.root) in dialog.inner_text()
    page.screenshot(path=ARTIFACTS / "02b-submit-dialog.png")
    dialog.locator("button.jp-mod-accept").click()
    dialog.wait_for(state="detached")

    # The sidebar opens with the job selected; the push channel moves it to Succeeded.
    row = sidebar(page).locator('.kfj-job[data-name="quick"]')
    row.wait_for()
    sidebar(page).locator('.kfj-job[data-name="quick"][data-state="Succeeded"]').wait_for()
    assert row.locator(".kfj-badge").inner_text() == "Succeeded"
    assert "1 of 1 replica ran to completion" in row.inner_text()
    assert re.search(r"\d+[smhd]", row.locator(".kfj-job-age").inner_text())

    detail = sidebar(page).locator(".kfj-detail")
    replica = detail.locator('tr[data-replica="worker-0"]')
    replica.click()
    assert "Succeeded" in replica.inner_text()
    log = detail.locator('pre.kfj-log[data-replica="worker-0"]')
    log.get_by_text("hello from the worker").wait_for()
    detail.locator(".kfj-log-ended").wait_for()
    page.screenshot(path=ARTIFACTS / "03-succeeded-with-log.png")

    detail.locator("button.kfj-delete").click()
    dialog = page.locator(".jp-Dialog")
    assert 'Delete TFJob "quick"' in dialog.inner_text() and "record and logs" in dialog.inner_text()
    page.screenshot(path=ARTIFACTS / "04-delete-confirmation.png")
    dialog.locator("button.jp-mod-warn").click()
    row.wait_for(state="detached")
    empty.wait_for()
    assert lab.api("GET", "jobs/quick")[0] == 404
    assert page.errors == []


def test_lab_ui_invalid_yaml_is_refused_with_its_field_paths(page, lab):
    delete_all_jobs(lab)
    right_click_file(page, "bad.yaml")
    page.locator(".lm-Menu-itemLabel", has_text="Submit as TFJob").click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Cannot submit TFJob").wait_for()
    assert "spec.tfReplicaSpecs.Worker.restartPolicy" in dialog.inner_text()
    page.screenshot(path=ARTIFACTS / "05-invalid-spec.png")
    dialog.locator("button.jp-mod-accept").click()
    dialog.wait_for(state="detached")
    assert lab.api("GET", "jobs")[1]["jobs"] == []


def test_lab_ui_palette_submit_live_log_status_bar_in_dark_theme(page, lab):
    from_palette(page, "Use Theme: JupyterLab Dark", re.compile(r"^Use Theme: JupyterLab Dark$"), "Theme")
    page.locator('body[data-jp-theme-name="JupyterLab Dark"]').wait_for(state="attached")
    page.locator("#jupyterlab-splash").wait_for(state="detached")  # Lab shows it while it swaps the theme

    from_palette(page, "Submit a TFJob", "Submit a TFJob YAML file", "TFJobs")
    page.locator(".jp-Dialog input").fill("gated.yaml")
    page.locator(".jp-Dialog button.jp-mod-accept").click()
    page.locator(".jp-Dialog .kfj-submit-body").wait_for()  # what will run, then submit
    page.locator(".jp-Dialog button.jp-mod-accept").click()

    sidebar(page).locator('.kfj-job[data-name="gated"][data-state="Running"]').wait_for()
    status = page.locator(".kfj-status")
    status.get_by_text("TFJobs: 1 running").wait_for()
    log = sidebar(page).locator('pre.kfj-log[data-replica="worker-0"]')
    log.get_by_text("first line").wait_for()
    sidebar(page).locator(".kfj-log-live").wait_for()
    page.screenshot(path=ARTIFACTS / "06-dark-running-live-log.png")

    (lab.root / "go").touch()  # the replica prints its second line and exits
    log.get_by_text("second line").wait_for()
    sidebar(page).locator('.kfj-job[data-name="gated"][data-state="Succeeded"]').wait_for()
    status.get_by_text("TFJobs: 0 running").wait_for()
    page.screenshot(path=ARTIFACTS / "07-dark-succeeded.png")
    sidebar(page).screenshot(path=ARTIFACTS / "08-dark-sidebar.png")
    assert page.errors == []
