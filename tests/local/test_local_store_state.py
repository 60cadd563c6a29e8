"""The local store's state stays exact and local: the journal, damaged and read-only stores,
nothing outliving its job, runPolicy.ttlSecondsAfterFinished."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from local_helpers import leftover_processes, processes_of, wait_until
from support.cleanup import stop_unfinished_jobs
from support.cli import cli_subprocess
from support.manifests import tfjob_manifest

from kubeflow_jupyter.backends.local import LocalBackend, journal
from kubeflow_jupyter.backends.local.journal import RESCAN, JournalReader
from kubeflow_jupyter.client import TFJobClient
from kubeflow_jupyter.errors import JobNotFound
from kubeflow_jupyter.tfjob.model import DEFAULT_NAMESPACE

SLEEP = "import time; time.sleep(120)"


def finished_job(client, workdir, name: str, code: str = "print('done')"):
    client.submit(tfjob_manifest(name, {"Worker": (1, "Never", code)}), workdir=workdir)
    return client.wait(name, timeout=60, raise_on_failure=False)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return False
    return raw[raw.rfind(")") + 2 :].split()[0] not in ("Z", "X")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                raw = f.read().decode(errors="replace")
        except OSError:
            continue
        if int(raw[raw.rfind(")") + 2 :].split()[1]) == pid:
            found.append(int(entry))
    return found


# -- the journal ------------------------------------------------------------------------------


def test_journal_reader_sees_lines_written_after_it_opened_and_waits_for_a_whole_line(tmp_path):
    journal.append(tmp_path, "before", "1")
    with JournalReader(tmp_path) as reader:
        assert reader.wait(0) == {}  # what came before is the initial listing's business
        journal.append(tmp_path, "a", "2")
        journal.append(tmp_path, "b", "1")
        journal.append(tmp_path, "a", "3")
        assert reader.wait(1) == {"a": "3", "b": "1"}
        with open(tmp_path / journal.NAME, "ab") as f:
            f.write(b"half")  # a line still being written
        assert reader.wait(0) == {}
        with open(tmp_path / journal.NAME, "ab") as f:
            f.write(b"-job 4\n")
        assert reader.wait(1) == {"half-job": "4"}


@pytest.mark.parametrize("event_driven", [True, False], ids=["inotify", "polling"])
def test_journal_reader_wakes_on_a_new_line_from_another_process(tmp_path, event_driven):
    with JournalReader(tmp_path) as reader:
        if not event_driven:
            reader._notify.close()
            reader._notify = None
        assert reader.event_driven is event_driven
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; "
                "from kubeflow_jupyter.backends.local import journal; "
                "journal.append(Path(sys.argv[1]), 'other', '7')",
                str(tmp_path),
            ],
            check=True,
        )
        got = {}
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            got = reader.wait(1)
        assert got == {"other": "7"}


def test_journal_rotation_makes_readers_rescan_and_then_read_the_new_file(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "MAX_BYTES", 40)
    with JournalReader(tmp_path) as reader:
        for version in range(1, 6):  # 5 lines of 10 bytes: the fifth passes 40 and unlinks the file
            journal.append(tmp_path, "rotates", str(version))
        assert not (tmp_path / journal.NAME).exists()
        assert reader.wait(0) is RESCAN
        journal.append(tmp_path, "after", "1")
        assert reader.wait(1) == {"after": "1"}


def test_a_namespace_watch_sees_every_change_through_the_journal_alone(client, workdir, monkeypatch):
    finished_job(client, workdir, "old")
    backend = LocalBackend()
    seen = []
    watch = backend.watch(timeout=60)
    first = next(watch)
    assert first.name == "old"
    client.submit(tfjob_manifest("new", {"Worker": (1, "Never", "print('hi')")}), workdir=workdir)
    for snap in watch:
        seen.append((snap.name, snap.state))
        if snap.name == "new" and snap.finished:
            break
    watch.close()
    assert seen[-1] == ("new", "Succeeded")
    assert all(name == "new" for name, _ in seen)  # the finished job is not read again


# -- a damaged or read-only store ---------------------------------------------------------------


def test_a_corrupt_status_file_is_one_unknown_row_and_every_other_job_is_listed(client, workdir):
    finished_job(client, workdir, "fine")
    finished_job(client, workdir, "broken")
    status = LocalBackend().store.job("broken").status_file
    status.write_text('{"x')
    rows = {s.name: s for s in client.list()}
    assert rows["fine"].state == "Succeeded"
    assert rows["broken"].state == "Unknown"
    assert str(status) in rows["broken"].message and "kubeflow-jupyter delete broken" in rows["broken"].message

    listed = cli_subprocess("list")
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    assert "broken" in listed.stdout and "Unknown" in listed.stdout and "fine" in listed.stdout
    got = cli_subprocess("get", "broken")
    assert got.returncode == 0 and "Unknown" in got.stdout and "Traceback" not in got.stderr
    waited = cli_subprocess("wait", "broken", "--timeout", "30")
    assert waited.returncode == 1 and "status.json" in waited.stderr and "Traceback" not in waited.stderr
    for damaged in ("[]", "null", '{"name": 5}', "\x00\xff"):
        status.write_bytes(damaged.encode("latin-1"))
        assert client.get("broken").state == "Unknown", damaged
    client.delete("broken")  # a damaged job can still be deleted
    assert [s.name for s in client.list()] == ["fine"]


def _without_root_file_powers():
    """As root, drop the capabilities that ignore file permissions (CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH, CAP_FOWNER) from the bounding set before exec, as ``setpriv`` does:
    the child then meets the read-only store as any user would."""
    if os.geteuid() != 0:
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def drop() -> None:
        for cap in (1, 2, 3):  # linux/capability.h
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                os._exit(99)

    return drop


def set_writable(home: Path, writable: bool) -> None:
    for path in [home, *home.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode | 0o200 if writable else mode & ~0o222)


@pytest.fixture
def readonly_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("KUBEFLOW_JUPYTER_HOME", str(home))
    yield home
    set_writable(home, True)
    stop_unfinished_jobs(home)


def run_cli_readonly(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBEFLOW_JUPYTER_HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    return cli_subprocess(*args, env=env, timeout=120, preexec_fn=_without_root_file_powers())


def test_a_read_only_store_gives_one_line_naming_the_directory_for_every_verb(readonly_home, tmp_path):
    client = TFJobClient("local")
    workdir = tmp_path / "work"
    workdir.mkdir()
    finished_job(client, workdir, "done")
    client.submit(tfjob_manifest("orphan", {"Worker": (1, "Never", SLEEP)}), workdir=workdir)
    wait_until(client, "orphan", lambda s: s.state == "Running")
    client.submit(tfjob_manifest("frozen", {"Worker": (1, "Never", SLEEP)}), workdir=workdir)
    wait_until(client, "frozen", lambda s: s.state == "Running")
    frozen = LocalBackend().store.job("frozen")
    supervisor = frozen.read_supervisor()
    # Stop its supervisor and watchdog before they can record anything, and its replica: a job
    # whose supervisor was lost while nobody could write, as a reader of a read-only store finds it.
    os.killpg(supervisor.pid, signal.SIGSTOP)
    for pid in frozen.read_pids().values():
        os.killpg(pid.pid, signal.SIGKILL)
    set_writable(readonly_home, False)
    os.killpg(supervisor.pid, signal.SIGKILL)
    yaml_file = workdir / "job.yaml"
    yaml_file.write_text(json.dumps(tfjob_manifest("new", {"Worker": (1, "Never", "print(1)")})))
    for args in (["submit", str(yaml_file)], ["delete", "done"]):
        result = run_cli_readonly(readonly_home, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
        assert str(readonly_home) in result.stderr and "KUBEFLOW_JUPYTER_HOME" in result.stderr
    listed = run_cli_readonly(readonly_home, "list")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert "frozen" in listed.stdout and "Failed" in listed.stdout and "done" in listed.stdout
    got = run_cli_readonly(readonly_home, "get", "frozen", "-o", "json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["status"]["conditions"][-1]["reason"] == "SupervisorLost"
    waited = run_cli_readonly(readonly_home, "wait", "frozen", "--timeout", "30")
    assert waited.returncode == 1 and "local supervisor" in waited.stderr and "Traceback" not in waited.stderr
    assert json.loads(frozen.status_file.read_text())["state"] == "Running"  # computed, never written
    assert not (readonly_home / "namespaces" / DEFAULT_NAMESPACE / "new").exists()
    set_writable(readonly_home, True)
    assert client.get("frozen").state == "Failed"  # the first reader that can write records it


# -- nothing outlives its job ------------------------------------------------------------------------


def test_a_shell_wrapped_replica_dies_with_its_supervisor_without_any_reader(client, workdir, isolated_home):
    job = tfjob_manifest("wrapped", {"Worker": (1, "Never", "")})
    job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["command"] = [
        "sh",
        "-c",
        f"{sys.executable} -c 'import time; time.sleep(120)'; true",
    ]
    client.submit(job, workdir=workdir)
    wait_until(client, "wrapped", lambda s: s.state == "Running")
    jobdir = LocalBackend().store.job("wrapped")
    shell = jobdir.read_pids()["worker-0"].pid
    deadline = time.monotonic() + 30
    while not (python := children_of(shell)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert python, "the shell never started python"
    os.kill(jobdir.read_supervisor().pid, signal.SIGKILL)
    killed_at = time.monotonic()
    # No reader touches the job from here on: only its watchdog can act.
    while any(alive(p) for p in python) and time.monotonic() - killed_at < 30:
        time.sleep(0.02)
    assert not any(alive(p) for p in python), "the replica's python outlived its supervisor"
    # The watchdog records the loss right after stopping the replicas (read the file: not a reader).
    while (status := json.loads(jobdir.status_file.read_text()))[
        "state"
    ] != "Failed" and time.monotonic() - killed_at < 30:
        time.sleep(0.02)
    assert status["state"] == "Failed" and status["status"]["conditions"][-1]["reason"] == "SupervisorLost"
    assert leftover_processes(isolated_home) == []


@pytest.mark.parametrize("how", ["rm -rf", "moved away"])
def test_a_job_directory_removed_behind_the_stores_back_stops_its_replicas(client, workdir, isolated_home, how):
    """rm -rf of the store (or a temporary home cleaned up) is a delete: nothing runs on with
    nowhere to report."""
    client.submit(tfjob_manifest("removed", {"Worker": (2, "Never", SLEEP)}), workdir=workdir)
    wait_until(client, "removed", lambda s: s.replica("worker-1") and s.replica("worker-1").phase == "Running")
    jobdir = LocalBackend().store.job("removed").path
    assert processes_of(isolated_home), "the job's processes should be running"
    if how == "rm -rf":
        shutil.rmtree(jobdir)
    else:
        jobdir.rename(workdir / "elsewhere")
    assert leftover_processes(isolated_home, grace=15) == []


# -- runPolicy.ttlSecondsAfterFinished ------------------------------------------------------------------


def test_ttl_seconds_after_finished_deletes_the_job_and_no_ttl_keeps_it(client, workdir, isolated_home):
    client.submit(
        tfjob_manifest(
            "short-lived", {"Worker": (1, "Never", "print('hi')")}, run_policy={"ttlSecondsAfterFinished": 1}
        ),
        workdir=workdir,
    )
    finished_job(client, workdir, "kept")
    assert client.wait("short-lived", timeout=60).state == "Succeeded"
    root = LocalBackend().store.root

    def deleted() -> bool:
        leftovers = [p for p in root.iterdir() if p.name.startswith((".deleting-short-lived", "short-lived"))]
        return not leftovers

    deadline = time.monotonic() + 60
    while not deleted() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert deleted(), "the job was not deleted after its TTL"
    with pytest.raises(JobNotFound):
        client.get("short-lived")
    assert [s.name for s in client.list()] == ["kept"]
    assert leftover_processes(isolated_home) == []


def test_the_supervisor_runs_the_plan_alone_and_never_parses_the_spec(tmp_path, workdir):
    """launch.json is the backend's plan (JobPlan.to_dict): with it and status.json the supervisor
    has every replica's launch and every rule it applies; manifest.json is only for `get -o yaml`."""
    from kubeflow_jupyter.backends.local.plan import JobPlan, plan_job
    from kubeflow_jupyter.backends.local.store import JobDir, write_json_atomic
    from kubeflow_jupyter.backends.local.supervisor import Supervisor

    spec = tfjob_manifest(
        "planned",
        {"Master": (1, "OnFailure", SLEEP), "Worker": (2, "ExitCode", SLEEP), "PS": (0, "Never", SLEEP)},
        run_policy={"backoffLimit": 3, "activeDeadlineSeconds": 60, "ttlSecondsAfterFinished": 5},
    )
    spec["spec"]["successPolicy"] = "AllWorkers"
    job = TFJobClient("local").prepare(spec).job
    plan = plan_job(job, DEFAULT_NAMESPACE, str(workdir))
    assert JobPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    jobdir = JobDir(tmp_path / "planned")
    jobdir.path.mkdir()
    write_json_atomic(jobdir.launch_file, plan.to_dict())
    write_json_atomic(jobdir.status_file, LocalBackend()._initial_snapshot(job).to_dict())
    supervisor = Supervisor(jobdir)
    try:
        assert not jobdir.manifest_file.exists()
        launches = supervisor.launches
        assert list(launches) == ["master-0", "worker-0", "worker-1"]
        ports = [launch.port for launch in launches.values()]
        assert len(set(ports)) == 3
        assert json.loads(launches["worker-1"].env["TF_CONFIG"]) == {
            "cluster": {
                "master": [f"localhost:{ports[0]}"],
                "ps": [],
                "worker": [f"localhost:{ports[1]}", f"localhost:{ports[2]}"],
            },
            "task": {"type": "worker", "index": 1},
            "environment": "cloud",
        }
        rules_view = supervisor.job
        assert (rules_view.name, rules_view.namespace) == ("planned", DEFAULT_NAMESPACE)
        assert (rules_view.run_policy, rules_view.success_policy) == (job.run_policy, "AllWorkers")
        assert {t: (s.replicas, s.restart_policy) for t, s in rules_view.replica_specs.items()} == {
            "Master": (1, "OnFailure"),
            "PS": (0, "Never"),
            "Worker": (2, "ExitCode"),
        }
    finally:
        os.close(supervisor.wakeup_r)
        os.close(supervisor.wakeup_w)
