"""The TFJobs sidebar with 1,000 TFJobs, in JupyterLab in Debian's Chromium.

Measured in one run, against JupyterLab's own file browser listing 1,000 files:

* first paint: page navigation → the panel shows all 1,000 entries, with the panel
  open at load (TFJobs sidebar vs the file browser: each restored from its workspace);
  also printed: what the sidebar adds after Lab's shell is up (goal ≤ 1 s);
* one change: a job's status rewritten on disk by the local store (as its supervisor
  does) → the row's badge changes (the backend's watch, the push channel, the render);
  anchor: a file renamed on disk, then the file browser's Refresh clicked → the
  listing shows the new name (Lab re-lists the directory and re-renders).

The 1,000 jobs are written straight into a throwaway local store in its on-disk format
(``backends/local/store.py``: one directory per job with ``status.json``), a third of
them Running, each with 3 replicas. Medians of ``--runs`` measurements are printed.

    .venv/bin/python bench/bench_sidebar.py [--jobs 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.lab_browser import chromium, running_lab  # noqa: E402

from kubeflow_jupyter.backends.local.store import JobDir, Store, write_json_atomic  # noqa: E402
from kubeflow_jupyter.tfjob.status import Condition, JobSnapshot, ReplicaState  # noqa: E402

GOAL_FIRST_PAINT_S = 1.0
TIMEOUT_MS = 120_000


def iso(t: datetime) -> str:
    return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def job_snapshot(name: str, created: datetime, running: bool) -> JobSnapshot:
    start, end = created + timedelta(seconds=2), created + timedelta(minutes=5)
    conditions = [
        Condition("Created", "True", "TFJobCreated", f"TFJob default/{name} is created.", iso(created), iso(created))
    ]
    if running:
        conditions.append(
            Condition("Running", "True", "TFJobRunning", f"TFJob default/{name} is running.", iso(start), iso(start))
        )
        phase, statuses = "Running", {"Worker": {"active": 2}, "PS": {"active": 1}}
    else:
        conditions += [
            Condition("Running", "False", "TFJobRunning", f"TFJob default/{name} is running.", iso(end), iso(start)),
            Condition(
                "Succeeded",
                "True",
                "TFJobSucceeded",
                f"TFJob default/{name} successfully completed.",
                iso(end),
                iso(end),
            ),
        ]
        phase, statuses = "Succeeded", {"Worker": {"succeeded": 2}, "PS": {"succeeded": 1}}
    replicas = [
        ReplicaState(
            t,
            i,
            phase=phase,
            exit_code=None if running else 0,
            started_at=iso(start),
            finished_at=None if running else iso(end),
            pod_name=f"{name}-{t.lower()}-{i}",
        )
        for t, n in (("PS", 1), ("Worker", 2))
        for i in range(n)
    ]
    return JobSnapshot(
        name=name,
        uid=f"uid-{name}",
        created=iso(created),
        conditions=conditions,
        replica_statuses=statuses,
        start_time=iso(start),
        completion_time=None if running else iso(end),
        replicas=replicas,
        resource_version="3",
    )


def write_jobs(home: Path, count: int) -> list[str]:
    """``count`` jobs in the local store; returns the names of the Running ones."""
    store = Store(home, "default")
    store.root.mkdir(parents=True)
    now = datetime.now(UTC)
    running = []
    for i in range(count):
        name = f"bench-{i:04d}"
        jobdir = JobDir(store.root / name)
        jobdir.path.mkdir()
        created = now - timedelta(minutes=i)
        write_json_atomic(
            jobdir.manifest_file,
            {
                "apiVersion": "kubeflow.org/v1",
                "kind": "TFJob",
                "metadata": {
                    "name": name,
                    "namespace": "default",
                    "uid": f"uid-{name}",
                    "creationTimestamp": iso(created),
                },
            },
        )
        jobdir.write_snapshot(job_snapshot(name, created, running=i % 3 == 0))
        if i % 3 == 0:
            running.append(name)
    return running


def finish(home: Path, name: str) -> None:
    """What the job's supervisor writes when worker 0 exits 0."""
    jobdir = JobDir(Store(home, "default").root / name)
    snapshot = jobdir.read_snapshot()
    done = job_snapshot(name, datetime.fromisoformat(snapshot.created.replace("Z", "+00:00")), running=False)
    done.resource_version = str(int(snapshot.resource_version) + 1)
    jobdir.write_snapshot(done)


MARKS = ("kfj-shell", "kfj-events-open", "kfj-jobs-received", "kfj-sidebar-shown")


def load_and_time(page, url: str, ready_js: str) -> dict[str, float]:
    """Seconds from navigation to: ready_js true ("ready") and each user-timing mark seen."""
    page.goto(url)
    page.wait_for_function(ready_js, polling="raf", timeout=TIMEOUT_MS)
    times = page.evaluate(
        "marks => Object.fromEntries([['ready', performance.now()], ...marks.map("
        "m => [m, performance.getEntriesByName(m)[0]?.startTime ?? NaN])])",
        list(MARKS),
    )
    return {k: v / 1000 for k, v in times.items()}


SHELL_MARK = """
new MutationObserver((_, obs) => {
  if (document.querySelector('#jp-main-dock-panel')) { performance.mark('kfj-shell'); obs.disconnect(); }
}).observe(document, {childList: true, subtree: true});
"""


def time_change(page, arm_js: str, trigger) -> float:
    """Arm an observer in the page, trigger the change, return page-time from trigger to DOM change (s)."""
    t0 = page.evaluate(arm_js)
    trigger()
    page.wait_for_function("window.__changedAt !== undefined", polling="raf", timeout=TIMEOUT_MS)
    return (page.evaluate("window.__changedAt") - t0) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-sidebar-") as tmp:
        tmp = Path(tmp)
        root, home, work = tmp / "root", tmp / "home", tmp / "work"
        for d in (root, work):
            d.mkdir()
        for i in range(args.jobs):
            (root / f"f{i:04d}.txt").write_text("x")
        running = write_jobs(home, args.jobs)
        n = args.jobs

        with running_lab(root, home, work) as lab, sync_playwright() as p, chromium(p) as browser:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.add_init_script(SHELL_MARK)
            page = context.new_page()
            base = f"{lab.url}lab/workspaces"
            files_ready = f"document.querySelectorAll('.jp-DirListing-item').length >= {n}"
            # The sidebar's list is windowed: ready = it holds all n jobs and shows its first rows.
            jobs_ready = (
                f"document.querySelector('#kubeflow-jupyter-sidebar .kfj-jobs')?.dataset.count === '{n}'"
                " && document.querySelectorAll('#kubeflow-jupyter-sidebar .kfj-job').length > 10"
            )

            # Workspace "jobs" restores with the TFJobs sidebar open: open it once and let Lab save that.
            page.goto(f"{base}/jobs?reset&token={lab.token}")
            page.locator('.lm-TabBar-tab[data-id="kubeflow-jupyter-sidebar"]').wait_for(timeout=TIMEOUT_MS)
            with page.expect_request(
                lambda r: "/lab/api/workspaces/jobs" in r.url and r.method == "PUT", timeout=TIMEOUT_MS
            ):
                page.locator('.lm-TabBar-tab[data-id="kubeflow-jupyter-sidebar"]').click()
            page.wait_for_function(jobs_ready, polling="raf", timeout=TIMEOUT_MS)

            files, jobs = [], []
            for _ in range(args.runs):  # interleaved, so both see the same machine load
                files.append(load_and_time(page, f"{base}/files?token={lab.token}", files_ready))
                jobs.append(load_and_time(page, f"{base}/jobs?token={lab.token}", jobs_ready))

            # One status change, on the jobs page (loaded last).
            sidebar_changes = []
            for name in running[: args.runs]:
                arm = f"""(() => {{
                  window.__changedAt = undefined;
                  const row = document.querySelector('.kfj-job[data-name="{name}"]');
                  new MutationObserver((_, obs) => {{
                    const now = document.querySelector('.kfj-job[data-name="{name}"]');
                    if (now && now.dataset.state === 'Succeeded') {{ window.__changedAt = performance.now(); obs.disconnect(); }}
                  }}).observe(row.parentElement, {{attributes: true, subtree: true, childList: true}});
                  return performance.now();
                }})()"""
                sidebar_changes.append(time_change(page, arm, lambda name=name: finish(home, name)))

            page.goto(f"{base}/files?token={lab.token}")
            page.wait_for_function(files_ready, polling="raf", timeout=TIMEOUT_MS)
            listing_changes = []
            for i in range(args.runs):
                new = f"renamed-{i:04d}.txt"
                (root / f"f{i:04d}.txt").rename(root / new)  # on disk: the page is not told
                # Armed and triggered in the page: the refresh button is clicked at t0.
                arm = f"""(() => {{
                  window.__changedAt = undefined;
                  const list = document.querySelector('.jp-DirListing-content');
                  new MutationObserver((_, obs) => {{
                    if ([...list.querySelectorAll('.jp-DirListing-itemText')].some(e => e.textContent === '{new}')) {{
                      window.__changedAt = performance.now(); obs.disconnect();
                    }}
                  }}).observe(list, {{attributes: true, subtree: true, childList: true, characterData: true}});
                  const t0 = performance.now();
                  [...document.querySelectorAll('.jp-FileBrowser .jp-ToolbarButtonComponent')]
                    .find(b => (b.title || '').startsWith('Refresh')).click();
                  return t0;
                }})()"""
                listing_changes.append(time_change(page, arm, lambda: None))
            context.close()

    med = statistics.median
    files_paint, jobs_paint = med(t["ready"] for t in files), med(t["ready"] for t in jobs)
    sidebar_own = med(t["ready"] - t["kfj-shell"] for t in jobs)
    files_own = med(t["ready"] - t["kfj-shell"] for t in files)
    # The sidebar's own first paint: from it being shown (or its data arriving, if later) to rows painted.
    own_paint = med(t["ready"] - max(t["kfj-sidebar-shown"], t["kfj-jobs-received"]) for t in jobs)
    received = med(t["kfj-jobs-received"] - t["kfj-events-open"] for t in jobs)
    change, anchor_change = med(sidebar_changes), med(listing_changes)
    print(f"bench_sidebar: {n} TFJobs vs {n} files, median of {args.runs} runs, Chromium {browser.version}")
    print("  first paint, navigation → all entries shown:")
    print(f"    TFJobs sidebar          {jobs_paint:7.3f} s")
    print(f"    file browser (anchor)   {files_paint:7.3f} s   ratio {jobs_paint / files_paint:.2f}x")
    print("  after Lab's shell is up:")
    print(f"    TFJobs sidebar          {sidebar_own:7.3f} s")
    print(f"    file browser (anchor)   {files_own:7.3f} s   ratio {sidebar_own / files_own:.2f}x")
    print(
        f"  the sidebar itself: push channel opened → {n} jobs received {received:.3f} s; "
        f"shown with data → rows painted {own_paint:.3f} s (goal ≤ {GOAL_FIRST_PAINT_S:.1f} s: "
        f"{'met' if own_paint <= GOAL_FIRST_PAINT_S else 'NOT met'})"
    )
    print("  one change → shown:")
    print(f"    job status on disk → badge      {change * 1000:7.1f} ms")
    print(f"    Refresh → renamed file (anchor) {anchor_change * 1000:7.1f} ms   ratio {change / anchor_change:.2f}x")


if __name__ == "__main__":
    main()
