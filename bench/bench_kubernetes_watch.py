"""How fast a TFJob status change becomes visible, and what it costs the API server:
this project's Kubernetes watch vs the kubeflow-training SDK's polling, against the same
fake API server in the same run.

Anchor: ``TrainingClient.wait_for_job_conditions`` from ``kubeflow-training`` 1.9 (polls
``get_job`` every ``polling_interval`` = 15 s by default). The SDK's own client cannot
deserialize TFJobs next to the ``kubernetes`` client this project uses (its generated
``ApiClient`` fails on ``List[V1Container]`` model types), so its loop is reproduced
step for step below — one GET of the TFJob per cycle, the same condition checks, the
same sleep — with the official client.

Run: ``.venv/bin/python bench/bench_kubernetes_watch.py`` (~45 s).
"""

from __future__ import annotations

import random
import re
import tempfile
import threading
import time
from pathlib import Path

from manifests import one_worker_job

from kubeflow_jupyter.backends.kubernetes import KubernetesBackend
from kubeflow_jupyter.backends.kubernetes.snapshot import build_snapshot
from kubeflow_jupyter.client import TFJobClient
from kubeflow_jupyter.testing.fake_kube import FakeKubeCluster
from kubeflow_jupyter.testing.fake_kube.store import TFJOBS

NAMESPACE = "bench"
JOBS = 8
RUN_SECONDS = (15.0, 30.0)  # each job's worker runs this long (uniform, seeded)
OPERATOR_STEP = 1.0  # seconds per operator/kubelet move (schedule, start): changes come after the clients opened
WATCH_OPEN_REQUESTS = 5  # per job: list TFJob + list pods, two watches, one pod list for the final snapshot
SDK_POLLING_INTERVAL = 15  # TrainingClient.wait_for_job_conditions' default
GOAL_P50 = 0.1
MEASURED = ("Running", "Succeeded")


class Timeline:
    """When each job entered each state — on the server, and as each client saw it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.server: dict[tuple[str, str], float] = {}
        self.seen: dict[str, dict[tuple[str, str], float]] = {"watch": {}, "poll": {}}
        self.created: dict[str, float] = {}
        self.finished: dict[str, float] = {}

    def server_event(self, event) -> None:  # runs on the fake's loop thread
        if event.resource != TFJOBS or event.type == "DELETED":
            return
        snap = build_snapshot(event.obj, [])
        with self.lock:
            self.server.setdefault((snap.name, snap.state), time.monotonic())
            self.created.setdefault(snap.name, time.monotonic())
            if snap.finished:
                self.finished.setdefault(snap.name, time.monotonic())

    def saw(self, client: str, name: str, state: str) -> None:
        with self.lock:
            self.seen[client].setdefault((name, state), time.monotonic())

    def latencies(self, client: str) -> list[float]:
        return [
            t - self.server[key] for key, t in self.seen[client].items() if key[1] in MEASURED and key in self.server
        ]


def watch_job(backend: KubernetesBackend, name: str, timeline: Timeline) -> None:
    for snap in backend.watch(name):
        timeline.saw("watch", name, snap.state)


def poll_job(custom_api, name: str, timeline: Timeline, wait_timeout: int = 600) -> None:
    """TrainingClient.wait_for_job_conditions(name, expected_conditions={"Succeeded"}), step for step."""
    for _ in range(round(wait_timeout / SDK_POLLING_INTERVAL)):
        job = custom_api.get_namespaced_custom_object("kubeflow.org", "v1", NAMESPACE, "tfjobs", name)
        conditions = (job.get("status") or {}).get("conditions") or []
        timeline.saw("poll", name, build_snapshot(job, []).state)  # the SDK's callback(job)
        if any(c["type"] == "Failed" and c["status"] == "True" for c in conditions):
            raise RuntimeError(f"TFJob {NAMESPACE}/{name} is Failed")
        if any(c["type"] == "Succeeded" and c["status"] == "True" for c in conditions):
            return
        time.sleep(SDK_POLLING_INTERVAL)
    raise TimeoutError(name)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    rng = random.Random(4)
    timeline = Timeline()
    with FakeKubeCluster(namespace=NAMESPACE, step=OPERATOR_STEP) as cluster, tempfile.TemporaryDirectory() as tmp:
        cluster.call(cluster.server.store.subscribe, timeline.server_event)
        configs = {who: cluster.write_kubeconfig(Path(tmp, who), user=who) for who in ("submit", "watch", "poll")}
        submitter = TFJobClient(KubernetesBackend(kubeconfig=str(configs["submit"])))
        watcher = KubernetesBackend(kubeconfig=str(configs["watch"]))
        poller = KubernetesBackend(kubeconfig=str(configs["poll"]))._jobs  # the official client, as the SDK uses
        names = [f"bench-{i}" for i in range(JOBS)]
        for name in names:
            cluster.script(name, "worker-0", run_seconds=rng.uniform(*RUN_SECONDS), logs=["training"])
            submitter.submit(one_worker_job(name, "print('training')"))
        threads = [
            threading.Thread(target=fn, args=(client, name, timeline), daemon=True)
            for name in names
            for fn, client in ((watch_job, watcher), (poll_job, poller))
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=RUN_SECONDS[1] + 3 * SDK_POLLING_INTERVAL)
        wall = time.monotonic() - started
        requests = cluster.requests

    job_minutes = sum(timeline.finished[n] - timeline.created[n] for n in names) / 60
    report = {}
    for client in ("watch", "poll"):
        lat = timeline.latencies(client)
        reqs = [r for r in requests if r.user == client]
        per_job = {n: sum(bool(re.search(rf"{n}(?![0-9a-z-])", r.path)) for r in reqs) for n in names}
        fixed = WATCH_OPEN_REQUESTS if client == "watch" else 1  # what a job costs before time passes
        report[client] = {
            "p50": percentile(lat, 50),
            "p99": percentile(lat, 99),
            "n": len(lat),
            "requests": len(reqs),
            "per_job_minute": len(reqs) / job_minutes,
            "after_open_per_job_minute": sum(max(c - fixed, 0) for c in per_job.values()) / job_minutes,
            "per_job": (min(per_job.values()), max(per_job.values())),
        }
    print(
        f"bench_kubernetes_watch: {JOBS} TFJobs of {RUN_SECONDS[0]:.0f}-{RUN_SECONDS[1]:.0f} s, "
        f"{job_minutes:.1f} job-minutes, {wall:.0f} s wall; visibility of {' and '.join(MEASURED)} "
        "(server change -> client sees it)"
    )
    labels = {
        "watch": "kubeflow-jupyter watch (TFJob + pod streams)",
        "poll": f"wait_for_job_conditions loop ({SDK_POLLING_INTERVAL} s polls)",
    }
    for client, r in report.items():
        lo, hi = r["per_job"]
        print(
            f"  {labels[client]:<46} p50 {r['p50'] * 1000:8.1f} ms  p99 {r['p99'] * 1000:8.1f} ms  (n={r['n']})  "
            f"requests: {lo}-{hi} per job, {r['per_job_minute']:.2f}/job-minute, "
            f"{r['after_open_per_job_minute']:.2f}/job-minute after open"
        )
    w, p = report["watch"], report["poll"]
    print(
        f"  ratio polling/watch: visibility p50 {p['p50'] / max(w['p50'], 1e-9):.0f}x, "
        f"p99 {p['p99'] / max(w['p99'], 1e-9):.0f}x; requests per job-minute after open: "
        f"{p['after_open_per_job_minute']:.2f} vs {w['after_open_per_job_minute']:.2f}"
    )
    print(
        f"  goal p50 <= {GOAL_P50 * 1000:.0f} ms: {'met' if w['p50'] <= GOAL_P50 else 'NOT met'}; "
        f"watch requests constant after open: {'yes' if w['after_open_per_job_minute'] == 0 else 'no'} "
        f"(each watch is renewed every {watcher.watch_timeout} s: "
        "2 requests per renewal)"
    )


if __name__ == "__main__":
    main()
