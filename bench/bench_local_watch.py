"""What the local backend's watch and list cost as the store grows: idle CPU of a namespace
watch, write→watcher latency, and ``list()`` — with 10, 1,000 and 10,000 finished jobs.

1. Idle CPU of one namespace watch (``LocalBackend(home=H).watch()``, no name), iterated in
   a child process that first drains the N initial snapshots, then measures its own CPU
   time (``time.process_time``: CLOCK_PROCESS_CPUTIME_ID, ns resolution) over an idle window
   where nothing is written. Cost = CPU seconds over the window, floored at one clock tick
   (10 ms, the resolution of /proc and ``times()`` CPU accounting) so that a near-zero cost
   at N=10 cannot inflate the ratio. Anchor: the same watch over the 10-job store in the
   same run. Goal: cost(10,000) / cost(10) <= 2 (the unfloored ratio is printed as well).
2. write→watcher latency, 10,000-job store plus one unfinished job whose "supervisor" is
   this process (supervisor.json names it): this process writes ~50 new versions of that
   job with ``JobDir.write_snapshot`` (read, resourceVersion + 1, write) after random pauses;
   a ``watch(name)`` child and a ``watch()`` child timestamp each snapshot they yield
   (``time.time()``, one clock for every process here). Latency = yield time − time just
   before the write call. Goal: p50 <= 50 ms for both.
3. ``LocalBackend(home=H).list()`` of the 10,000-job store, median of 3. Anchor: a plain
   loop that ``json.load``s the same 10,000 status.json files, same run, alternated with the
   list()s. Prints list/plain. Goal: list() <= 1 s.

The stores are built from ONE real job run through ``TFJobClient(backend=LocalBackend(...))``
whose directory is cloned N-1 times under new names (``job-00001``…) with the name and uid
rewritten in every file and its journal lines repeated, so each clone looks like a real
finished job. Everything lives under one temporary directory in /tmp, removed at the end.
Exit status 0 when every goal is met, 1 otherwise.

    .venv/bin/python bench/bench_local_watch.py [--idle-seconds 10]   (~1-2 min)
    .venv/bin/python bench/bench_local_watch.py --quick   (N = 10/100/1,000, 3 s idle windows)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

NAMESPACE = "default"
SOURCE = "job-00000"  # the real job; clones are job-00001 ... (same length: plain text replacement)
LIVE = "job-live"  # the unfinished job written during the latency measurement
GOAL_IDLE_RATIO = 2.0
GOAL_P50 = 0.050
GOAL_LIST = 1.0
WRITES = 50
PAUSE = (0.02, 0.2)  # seconds between two writes (uniform, seeded)
LIST_RUNS = 3
CLOCK_TICK = 1 / os.sysconf("SC_CLK_TCK")
CHILD_START_TIMEOUT = 120.0


# -- children: a watch in its own process ------------------------------------------------
def _ctx_switches() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    return 0


def child_idle(home: str, initial: int, seconds: float) -> None:
    """Drain ``initial`` snapshots of a namespace watch, then report the CPU of ``seconds`` idle."""
    from kubeflow_jupyter.backends.local import LocalBackend

    stop = threading.Event()
    t_open = time.monotonic()
    watch = LocalBackend(home=home).watch(stop=stop)
    for _ in range(initial):
        next(watch)
    drained = time.monotonic() - t_open
    timer = threading.Timer(seconds, stop.set)
    cpu0, wall0, ctx0 = time.process_time(), time.monotonic(), _ctx_switches()
    timer.start()
    extra = sum(1 for _ in watch)  # ends within STOP_CHECK_SECONDS of stop
    cpu1, wall1, ctx1 = time.process_time(), time.monotonic(), _ctx_switches()
    print(
        json.dumps(
            {"cpu": cpu1 - cpu0, "wall": wall1 - wall0, "wakeups": ctx1 - ctx0, "drain": drained, "extra": extra}
        ),
        flush=True,
    )


def child_latency(home: str, name: str, initial: int) -> None:
    """Drain ``initial`` snapshots, say ready, then print "<job> <resourceVersion> <time>" per snapshot."""
    from kubeflow_jupyter.backends.local import LocalBackend

    watch = LocalBackend(home=home).watch(name or None)
    for _ in range(initial):
        next(watch)
    print("ready", flush=True)
    for snap in watch:
        now = time.time()
        print(f"{snap.name} {snap.resource_version} {now:.6f}", flush=True)


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, "--child", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    )


# -- building the stores ---------------------------------------------------------------------
def run_source_job(home: Path, workdir: Path):
    """One real quick job through the client; returns (its directory, its first snapshot)."""
    from manifests import one_worker_job

    from kubeflow_jupyter.backends.local import LocalBackend
    from kubeflow_jupyter.client import TFJobClient

    client = TFJobClient(backend=LocalBackend(home=home))
    submission = client.submit(one_worker_job(SOURCE, "print('hi')"), workdir=workdir)
    final = client.wait(SOURCE, timeout=60)
    if final.state != "Succeeded":
        raise SystemExit(f"the source job ended {final.state}: {final.message}")
    return home / "namespaces" / NAMESPACE / SOURCE, submission.snapshot


def read_template(jobdir: Path) -> tuple[str, list[tuple[str, str, int]], list[str]]:
    """(uid, [(relative path, text, mode)], journal lines of the job) of the source job."""
    uid = json.loads((jobdir / "status.json").read_text())["uid"]
    files = []
    for path in sorted(jobdir.rglob("*")):
        if path.is_file() and path.name != "lock":
            files.append((str(path.relative_to(jobdir)), path.read_text(), path.stat().st_mode & 0o777))
    journal = [line for line in (jobdir.parent / ".journal").read_text().splitlines() if line.split(" ")[0] == SOURCE]
    return uid, files, journal


def clone_store(home: Path, n: int, template) -> None:
    """A namespace of ``n`` finished jobs: job-00000 ... job-<n-1>, each the source job renamed."""
    uid, files, journal = template
    root = home / "namespaces" / NAMESPACE
    lines = []
    for i in range(n):
        name, new_uid = f"job-{i:05d}", str(uuid.uuid4())
        jobdir = root / name
        os.makedirs(jobdir / "logs")
        for rel, text, mode in files:
            fd = os.open(jobdir / rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text.replace(SOURCE, name).replace(uid, new_uid))
        lines += [line.replace(SOURCE, name) for line in journal]
    (root / ".journal").write_text("".join(f"{line}\n" for line in lines))


def add_live_job(home: Path, template, first_snapshot) -> None:
    """An unfinished job (its Created snapshot) whose supervisor is this process."""
    from kubeflow_jupyter.backends.local.processes import ProcessId
    from kubeflow_jupyter.backends.local.store import JobDir, write_json_atomic

    uid, files, _ = template
    new_uid = str(uuid.uuid4())
    root = home / "namespaces" / NAMESPACE
    staging = root / f".creating-{LIVE}"
    os.makedirs(staging / "logs")
    for rel, text, _mode in files:
        if rel not in ("status.json", "supervisor.json", "pids.json"):
            (staging / rel).write_text(text.replace(SOURCE, LIVE).replace(uid, new_uid))
    write_json_atomic(staging / "pids.json", {})
    write_json_atomic(staging / "supervisor.json", ProcessId.of(os.getpid()).to_list())
    snap = dataclasses.replace(first_snapshot, name=LIVE, uid=new_uid)
    write_json_atomic(staging / "status.json", snap.to_dict())
    os.rename(staging, root / LIVE)
    JobDir(root / LIVE).write_snapshot(dataclasses.replace(snap, resource_version="2"))  # journaled


# -- measurements ---------------------------------------------------------------------------------
def measure_idle(home: Path, n: int, seconds: float) -> dict:
    child = spawn("idle", str(home), str(n), str(seconds))
    out, _ = child.communicate(timeout=CHILD_START_TIMEOUT + seconds)
    if child.returncode != 0:
        raise SystemExit(f"idle watch child failed ({child.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def reader(proc: subprocess.Popen, ready: threading.Event, seen: dict) -> None:
    for line in proc.stdout:
        if line.strip() == "ready":
            ready.set()
            continue
        name, version, when = line.split()
        if name == LIVE:
            seen.setdefault(version, float(when))


def measure_latency(home: Path, n: int, seed: int = 7) -> dict:
    from kubeflow_jupyter.backends.local.store import JobDir

    jobdir = JobDir(home / "namespaces" / NAMESPACE / LIVE)
    watchers = {
        "watch(name)": spawn("latency", str(home), LIVE, "1"),
        "watch()": spawn("latency", str(home), "", str(n + 1)),
    }
    seen = {label: {} for label in watchers}
    readies = {}
    try:
        for label, proc in watchers.items():
            readies[label] = threading.Event()
            threading.Thread(target=reader, args=(proc, readies[label], seen[label]), daemon=True).start()
        for label, ready in readies.items():
            if not ready.wait(CHILD_START_TIMEOUT):
                raise SystemExit(f"the {label} child did not get ready")
        rng = random.Random(seed)
        written = {}
        for _ in range(WRITES):
            time.sleep(rng.uniform(*PAUSE))
            snap = jobdir.read_snapshot()
            snap = dataclasses.replace(snap, resource_version=str(int(snap.resource_version) + 1))
            written[snap.resource_version] = time.time()
            jobdir.write_snapshot(snap)
        time.sleep(0.5)
    finally:
        for proc in watchers.values():
            proc.terminate()
        for proc in watchers.values():
            proc.wait(timeout=10)
    result = {}
    for label in watchers:
        lat = [seen[label][v] - t for v, t in written.items() if v in seen[label]]
        result[label] = {"lat": lat, "missed": len(written) - len(lat)}
    return result


def plain_read(root: Path) -> int:
    count = 0
    for entry in os.listdir(root):
        if entry.startswith("."):
            continue
        with open(os.path.join(root, entry, "status.json"), encoding="utf-8") as f:
            json.load(f)
        count += 1
    return count


def measure_list(home: Path, n: int) -> tuple[list[float], list[float]]:
    from kubeflow_jupyter.backends.local import LocalBackend

    plain, listed = [], []
    for _ in range(LIST_RUNS):
        t = time.perf_counter()
        count = plain_read(home / "namespaces" / NAMESPACE)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        rows = LocalBackend(home=home).list()
        listed.append(time.perf_counter() - t)
        if count != n or len(rows) != n or any(r.state != "Succeeded" for r in rows):
            raise SystemExit(
                f"store of {n}: plain loop read {count}, list() returned {len(rows)} "
                f"({sum(r.state != 'Succeeded' for r in rows)} not Succeeded)"
            )
    return plain, listed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--idle-seconds", type=float, default=None, help="idle window per store (default 10, --quick 3)"
    )
    parser.add_argument("--quick", action="store_true", help="N = 10/100/1,000 and 3 s idle windows")
    args = parser.parse_args()
    sizes = (10, 100, 1000) if args.quick else (10, 1000, 10000)
    idle_seconds = args.idle_seconds or (3.0 if args.quick else 10.0)
    small, big = sizes[0], sizes[-1]
    goals: list[bool] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-local-watch-", dir="/tmp"))
    try:
        started = time.perf_counter()
        source_dir, first = run_source_job(tmp / "source", tmp)
        template = read_template(source_dir)
        ran = time.perf_counter() - started
        homes = {}
        for n in sizes:
            homes[n] = tmp / f"home-{n}"
            clone_store(homes[n], n, template)
        built = time.perf_counter() - started - ran
        print(
            f"bench_local_watch: stores of {', '.join(f'{n:,}' for n in sizes)} finished jobs "
            f"(1 real job in {ran:.1f} s, cloned {sum(sizes):,} job directories in {built:.1f} s)",
            flush=True,
        )

        # 1. idle CPU of a namespace watch
        idle = {n: measure_idle(homes[n], n, idle_seconds) for n in sizes}
        print(
            f"1. idle namespace watch, {idle_seconds:g} s window after the initial listing "
            "(CPU: process_time of the watching process)"
        )
        for n, r in idle.items():
            print(
                f"   {n:>6,} jobs: CPU {r['cpu'] * 1000:7.1f} ms over {r['wall']:.2f} s = "
                f"{100 * r['cpu'] / r['wall']:.3f} % of a core; {r['wakeups'] / r['wall']:.1f} wakeups/s; "
                f"initial listing drained in {r['drain']:.2f} s; {r['extra']} snapshot(s) while idle"
            )
        cost = {n: max(r["cpu"], CLOCK_TICK) for n, r in idle.items()}
        ratio = cost[big] / cost[small]
        raw_ratio = idle[big]["cpu"] / max(idle[small]["cpu"], 1e-9)
        goals.append(ratio <= GOAL_IDLE_RATIO)
        print(
            f"   ratio cost({big:,})/cost({small:,}) = {ratio:.2f} (cost = CPU s over the window, floored at "
            f"one clock tick = {CLOCK_TICK * 1000:.0f} ms); unfloored {raw_ratio:.2f}; "
            f"goal <= {GOAL_IDLE_RATIO:g}: {'goal met' if goals[-1] else 'goal NOT met'}",
            flush=True,
        )

        # 3 (run before 2: the store still holds finished jobs only). list()
        plain, listed = measure_list(homes[big], big)
        p, l_ = statistics.median(plain), statistics.median(listed)
        goals.append(l_ <= GOAL_LIST)

        # 2. write -> watcher latency
        add_live_job(homes[big], template, first)
        latency = measure_latency(homes[big], big)
        print(
            f"2. write -> watcher latency, {big:,} finished jobs + 1 live job, {WRITES} writes "
            f"{PAUSE[0] * 1000:.0f}-{PAUSE[1] * 1000:.0f} ms apart (time before write_snapshot -> snapshot yielded)"
        )
        for label, r in latency.items():
            lat = r["lat"]
            if not lat:
                goals.append(False)
                print(f"   {label:<12} saw none of the writes: goal NOT met")
                continue
            p50 = percentile(lat, 50)
            goals.append(p50 <= GOAL_P50 and r["missed"] == 0)
            print(
                f"   {label:<12} p50 {p50 * 1000:6.1f} ms  p95 {percentile(lat, 95) * 1000:6.1f} ms  "
                f"max {max(lat) * 1000:6.1f} ms  (n={len(lat)}, missed {r['missed']}); "
                f"goal p50 <= {GOAL_P50 * 1000:.0f} ms: {'goal met' if goals[-1] else 'goal NOT met'}"
            )

        print(
            f"3. list() of {big:,} jobs: median {l_:.3f} s (runs {', '.join(f'{x:.3f}' for x in listed)}); "
            f"anchor: plain loop json.load of the {big:,} status.json files, median {p:.3f} s "
            f"(runs {', '.join(f'{x:.3f}' for x in plain)})"
        )
        print(
            f"   ratio list/plain = {l_ / p:.2f}; goal list() <= {GOAL_LIST:g} s: "
            f"{'goal met' if goals[1] else 'goal NOT met'}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"all goals met: {'yes' if all(goals) else 'no'} (total {time.perf_counter() - started:.0f} s)")
    return 0 if all(goals) else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == "idle":
            child_idle(rest[0], int(rest[1]), float(rest[2]))
        else:
            child_latency(rest[0], rest[1], int(rest[2]))
        sys.exit(0)
    sys.exit(main())
