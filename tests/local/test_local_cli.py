"""The kubeflow-jupyter CLI: its verbs, its exit codes, short errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from local_helpers import leftover_processes
from support.cli import cli_subprocess
from support.manifests import tfjob_manifest

from kubeflow_jupyter.cli import main
from kubeflow_jupyter.tfjob.model import DEFAULT_NAMESPACE


def write_job(tmp_path, manifest: dict, name: str = "job.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(manifest))
    return path


def assert_short_error(result, exit_code: int, *needles: str) -> None:
    assert result.returncode == exit_code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("kubeflow-jupyter: ") or result.stderr.startswith("usage:")
    for needle in needles:
        assert needle in result.stderr


@pytest.mark.parametrize(
    "content, needle",
    [
        (None, "cannot read"),
        ("just: [unclosed", "YAML"),
        ("- a list\n", "mapping"),
        (
            "apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata: {name: x}\nspec:\n  tfReplicaSpecs:\n"
            "    Worker: {replicas: -1, template: {spec: {containers: [{name: tensorflow, image: i, command: [python]}]}}}\n",
            "spec.tfReplicaSpecs.Worker.replicas",
        ),
    ],
)
def test_bad_input_exits_2_with_one_short_error_and_creates_nothing(tmp_path, isolated_home, content, needle):
    path = tmp_path / "bad.yaml"
    if content is not None:
        path.write_text(content)
    result = cli_subprocess("submit", str(path))
    assert_short_error(result, 2, needle)
    assert list(isolated_home.rglob("*")) == []


def test_seed_yaml_without_command_names_the_fix(isolated_home):
    result = cli_subprocess("submit", "examples/tfjob-legacy.yaml")
    assert_short_error(result, 2, "containers[tensorflow].command", '--command "python')
    assert "notice:" not in result.stdout and list(isolated_home.rglob("*")) == []


def test_dry_run_prints_the_v1_manifest_and_creates_nothing(isolated_home):
    result = cli_subprocess(
        "submit",
        "examples/tfjob-legacy.yaml",
        "--command",
        "python examples/tf_sample/tf_sample.py",
        "--dry-run",
        "--name",
        "dry-seed",
    )
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(result.stdout)
    assert (manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"]) == (
        "kubeflow.org/v1",
        "TFJob",
        "dry-seed",
    )
    assert sorted(manifest["spec"]["tfReplicaSpecs"]) == ["Master", "PS", "Worker"]
    master = manifest["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    assert master["command"] == ["python", "examples/tf_sample/tf_sample.py"]
    assert "notice: converted" in result.stderr and "dry run" in result.stderr
    assert list(isolated_home.rglob("*")) == []


def test_unknown_job_replica_and_taken_name_exit_2(tmp_path):
    for verb in (["get", "ghost"], ["logs", "ghost"], ["wait", "ghost"], ["delete", "ghost"]):
        assert_short_error(cli_subprocess(*verb), 2, "no TFJob named 'ghost'")
    path = write_job(tmp_path, tfjob_manifest("taken", {"Worker": (1, "Never", "pass")}))
    assert cli_subprocess("submit", str(path), "--wait").returncode == 0
    assert_short_error(cli_subprocess("submit", str(path)), 2, "already exists")
    assert_short_error(cli_subprocess("logs", "taken", "--replica", "ps-7"), 2, "no replica 'ps-7'")


def test_bad_options_are_usage_errors():
    assert_short_error(cli_subprocess("logs", "x", "--tail", "-3"), 2, "--tail")
    assert_short_error(cli_subprocess("list", "--backend", "mars"), 2, "--backend")
    assert_short_error(cli_subprocess("frobnicate"), 2)


def test_failed_job_exits_1_and_wait_shows_progress(tmp_path, isolated_home, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_job(
        tmp_path, tfjob_manifest("boom", {"Worker": (1, "Never", "print('about to fail'); raise SystemExit(4)")})
    )
    assert main(["submit", str(path), "--wait", "--logs"]) == 1
    out, err = capsys.readouterr()
    assert "about to fail" in out
    assert "boom: Failed" in err and "TFJob 'boom' failed" in err and "Traceback" not in err
    assert main(["wait", "boom"]) == 1
    assert main(["get", "boom"]) == 0
    table = capsys.readouterr().out
    assert "worker-0" in table and "Failed" in table
    assert main(["delete", "boom"]) == 0
    assert leftover_processes(isolated_home) == []


def test_list_get_json_logs_tail_and_delete(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_job(tmp_path, tfjob_manifest("talk", {"Worker": (1, "Never", "for i in range(3): print('n', i)")}))
    assert main(["submit", str(path), "--wait"]) == 0
    assert "tfjob 'talk' Succeeded" in capsys.readouterr().out
    assert main(["list"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["talk", "Succeeded"]
    assert main(["get", "talk", "-o", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["status"]["conditions"][-1]["type"] == "Succeeded" and obj["metadata"]["uid"]
    assert main(["logs", "talk", "--tail", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n 1", "n 2"]
    assert main(["delete", "talk"]) == 0
    assert capsys.readouterr().out == "tfjob 'talk' deleted\n"
    assert main(["list"]) == 0
    assert capsys.readouterr().out == ""


def test_serving_verbs_are_registered_without_importing_heavy_modules():
    code = (
        "import sys; from kubeflow_jupyter.cli import build_parser; build_parser().parse_args(['list']); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'grpc', 'kubernetes', 'ipywidgets'}))"
    )
    heavy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert heavy.strip() == "[]"
    help_text = cli_subprocess("--help").stdout
    for verb in ("submit", "list", "get", "logs", "wait", "delete", "serve"):
        assert f"    {verb} " in help_text


# -- kubectl habits: global flags anywhere, --version, -o ---------------------------------------------
def test_global_options_are_accepted_before_or_after_the_verb(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KUBEFLOW_JUPYTER_BACKEND")
    path = write_job(tmp_path, tfjob_manifest("where", {"Worker": (1, "Never", "pass")}))
    assert main(["--backend", "local", "-n", "team-a", "submit", str(path), "--wait"]) == 0
    assert "namespace 'team-a'" in capsys.readouterr().out
    for argv in (
        ["--backend", "local", "--namespace", "team-a", "list"],
        ["list", "--backend", "local", "-n", "team-a"],
        ["-n", "team-a", "list", "--backend", "local"],
        ["--backend", "local", "list", "-n", "team-a"],
    ):
        assert main(argv) == 0, argv
        assert capsys.readouterr().out.splitlines()[1].split()[0] == "where", argv
    assert main(["--backend", "local", "-n", "team-a", "list", "-n", "team-b"]) == 0  # the later one wins
    out, err = capsys.readouterr()
    assert out == "" and "no TFJobs in namespace 'team-b'" in err
    assert main(["-n", "team-a", "status", "where", "--backend", "local"]) == 0  # status: get's alias
    assert "Namespace:   team-a" in capsys.readouterr().out


def test_version_prints_the_package_version():
    from kubeflow_jupyter import __version__

    result = cli_subprocess("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"kubeflow-jupyter {__version__}\n", "")


def test_list_and_get_outputs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["list", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"apiVersion": "v1", "kind": "List", "items": []}
    for name in ("one", "two"):
        path = write_job(tmp_path, tfjob_manifest(name, {"Worker": (2, "Never", "pass"), "PS": (1, "Never", "pass")}))
        assert main(["submit", str(path), "--wait"]) == 0
    capsys.readouterr()

    assert main(["list", "-o", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["two", "one"]  # newest first, as the table
    assert main(["get", "one", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == listed["items"][1]  # the objects get -o json prints
    assert main(["list", "-o", "yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == listed

    assert main(["list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "STATE", "ACTIVE", "SUCCEEDED", "FAILED", "AGE", "BACKEND"]
    assert main(["list", "-o", "wide"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "NAME",
        "STATE",
        "ACTIVE",
        "SUCCEEDED",
        "FAILED",
        "AGE",
        "BACKEND",
        "NAMESPACE",
        "REPLICAS",
        "MESSAGE",
    ]
    assert rows[1].split()[:2] == ["one", "Succeeded"] and DEFAULT_NAMESPACE in rows[1].split()
    assert rows[1].endswith(f"PS:1,Worker:2   TFJob {DEFAULT_NAMESPACE}/one successfully completed.")  # the message

    assert main(["get", "one"]) == 0
    plain = capsys.readouterr().out
    assert main(["get", "one", "-o", "wide"]) == 0
    wide = capsys.readouterr().out
    assert plain.splitlines()[:7] == wide.splitlines()[:7]  # the same Name/Namespace/... header
    columns = next(line for line in wide.splitlines() if line.startswith("REPLICA")).split()
    assert columns == ["REPLICA", "TYPE", "INDEX", "PHASE", "RESTARTS", "EXIT", "STARTED", "FINISHED", "POD", "MESSAGE"]
    assert any(line.split()[:3] == ["worker-1", "Worker", "1"] for line in wide.splitlines())


def test_a_bogus_backend_from_the_environment_is_bad_input(isolated_home):
    env = {**os.environ, "KUBEFLOW_JUPYTER_BACKEND": "bogus"}
    result = cli_subprocess("list", env=env, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "kubeflow-jupyter: unknown backend 'bogus': use one of auto, local, kubernetes "
        "(--backend or $KUBEFLOW_JUPYTER_BACKEND)\n"
    )
    assert list(isolated_home.rglob("*")) == []


def test_exit_codes_and_http_statuses_come_from_one_table():
    from kubeflow_jupyter import errors
    from kubeflow_jupyter.serverext.handlers import error_status

    cases = [
        (errors.SpecError("x"), 2, 400),
        (errors.UsageError("x"), 2, 400),
        (errors.UnknownBackend("x"), 2, 400),
        (errors.JobNotFound("x"), 2, 404),
        (errors.ReplicaNotFound("x"), 2, 404),
        (errors.AlreadyExists("x"), 2, 409),
        (errors.StoreNotWritable("x"), 2, 403),
        (errors.BackendError("x"), 1, 502),
        (errors.WaitTimeout("x", 1, "Running"), 1, 504),
    ]
    for error, exit_code, status in cases:
        assert (errors.exit_code(error), error_status(error)) == (exit_code, status), error
    assert {cls for cls, _, _ in errors.ERROR_CODES} == set(errors.EXIT_CODES) == set(errors.HTTP_STATUS)
