"""Record → point visible: how long after a replica prints a metrics record it reaches a live
chart, against the same record read by a plain ``client.logs(name, follow=True)`` (what
``%tfjob logs --follow`` does), in the same run, on the local backend.

The replica prints ``report(i, loss=..., t=<time.time()>)`` every 0.25 s; each reader notes
when the record reaches it and subtracts ``t``. Three readers follow the same job at once:

- ``logs``: ``client.logs(name, follow=True)``, each line parsed (the anchor);
- ``follower``: :class:`kubeflow_jupyter.metrics.MetricsFollower`, iterated (the widget's path);
- ``sidebar``: the Jupyter server's :class:`~kubeflow_jupyter.metrics.live.MetricsRegistry`
  answered by long polls with a cursor, as ``GET jobs/<name>/metrics?since=&wait=`` runs them
  (the same code, in process: no HTTP hop).

Goal (issue #16): p50 ≤ 0.5 s. Run: ``.venv/bin/python bench/bench_metrics.py`` (~25 s).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time

RECORDS = 60
INTERVAL = 0.25
GOAL_P50 = 0.5

TRAIN = f"""
import time
from kubeflow_jupyter.metrics import report
time.sleep(1.0)
for i in range({RECORDS}):
    report(i, loss=1 / (i + 1), t=time.time())
    time.sleep({INTERVAL})
"""


def main() -> None:
    os.environ.setdefault("KUBEFLOW_JUPYTER_HOME", tempfile.mkdtemp(prefix="bench-metrics-"))
    os.environ["KUBEFLOW_JUPYTER_BACKEND"] = "local"
    from manifests import one_worker_job

    from kubeflow_jupyter.client import TFJobClient
    from kubeflow_jupyter.metrics import MetricsFollower, parse_line
    from kubeflow_jupyter.metrics.live import MetricsRegistry

    client = TFJobClient("local")
    client.submit(one_worker_job("bench-metrics", TRAIN))
    delays: dict[str, list[float]] = {"logs": [], "follower": [], "sidebar": []}

    def by_logs() -> None:
        for line in client.logs("bench-metrics", follow=True):
            record = parse_line(line)
            if record is not None and "t" in record.values:
                delays["logs"].append(time.time() - record.values["t"])

    def by_follower() -> None:
        with MetricsFollower(client, "bench-metrics") as follower:
            for point in follower:
                if point.metric == "t":
                    delays["follower"].append(time.time() - point.value)

    def by_sidebar() -> None:
        registry = MetricsRegistry(lambda: client)

        async def poll() -> None:
            cursor = None
            while True:
                live = registry.get("bench-metrics")
                await live.wait(live.parse_cursor(cursor), 25)
                reply = live.answer(cursor)
                now = time.time()
                cursor = reply["cursor"]
                if not reply["reset"]:  # the first reply holds what came before the poll began
                    for _, t in reply["series"].get("t", {}).get("worker-0", []):
                        delays["sidebar"].append(now - t)
                if not reply["live"]:
                    return

        asyncio.run(poll())
        registry.close()

    threads = [threading.Thread(target=f) for f in (by_logs, by_follower, by_sidebar)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    client.delete("bench-metrics")

    p50 = {name: statistics.median(d) if d else float("nan") for name, d in delays.items()}
    for name, d in delays.items():
        print(f"{name:9s} n={len(d):3d}  p50={p50[name] * 1000:7.1f} ms  p90={_p90(d) * 1000:7.1f} ms")
    print(
        f"ratio follower/logs = {p50['follower'] / p50['logs']:.2f}   sidebar/logs = {p50['sidebar'] / p50['logs']:.2f}"
    )
    worst = max(p50["follower"], p50["sidebar"])
    print(f"goal: record → point p50 ≤ {GOAL_P50} s: {'met' if worst <= GOAL_P50 else 'MISSED'} ({worst:.3f} s)")
    sys.exit(0 if worst <= GOAL_P50 else 1)


def _p90(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.9)] if values else float("nan")


if __name__ == "__main__":
    main()
