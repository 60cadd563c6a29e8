"""The kubeflow-jupyter CLI: its verbs, its exit codes, short errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from local_helpers import leftover_processes, run_cli, tfjob_yaml
from kubeflow_jupyter.cli import main


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


@pytest.mark.parametrize("content, needle", [
    (None, "cannot read"),
    ("just: [unclosed", "YAML"),
    ("- a list\n", "mapping"),
    ("apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata: {name: x}\nspec:\n  tfReplicaSpecs:\n"
     "    Worker: {replicas: -1, template: {spec: {containers: [{name: tensorflow, image: i, command: [python]}]}}}\n",
     "spec.tfReplicaSpecs.Worker.replicas"),
])
def test_bad_input_exits_2_with_one_short_error_and_creates_nothing(tmp_path, isolated_home, content, needle):
    path = tmp_path / "bad.yaml"
    if content is not None:
        path.write_text(content)
    result = run_cli("submit", str(path))
    assert_short_error(result, 2, needle)
    assert list(isolated_home.rglob("*")) == []


def test_seed_yaml_without_command_names_the_fix(isolated_home):
    result = run_cli("submit", "examples/tfjob-legacy.yaml")
    assert_short_error(result, 2, "containers[tensorflow].command", '--command "python')
    assert "notice:" not in result.stdout and list(isolated_home.rglob("*")) == []


def test_dry_run_prints_the_v1_manifest_and_creates_nothing(isolated_home):
    result = run_cli("submit", "examples/tfjob-legacy.yaml", "--command", "python examples/tf_sample/tf_sample.py",
                     "--dry-run", "--name", "dry-seed")
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(result.stdout)
    assert (manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"]) == ("kubeflow.org/v1", "TFJob", "dry-seed")
    assert sorted(manifest["spec"]["tfReplicaSpecs"]) == ["Master", "PS", "Worker"]
    master = manifest["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    assert master["command"] == ["python", "examples/tf_sample/tf_sample.py"]
    assert "notice: converted" in result.stderr and "dry run" in result.stderr
    assert list(isolated_home.rglob("*")) == []


def test_unknown_job_replica_and_taken_name_exit_2(tmp_path):
    for verb in (["get", "ghost"], ["logs", "ghost"], ["wait", "ghost"], ["delete", "ghost"]):
        assert_short_error(run_cli(*verb), 2, "no TFJob named 'ghost'")
    path = write_job(tmp_path, tfjob_yaml("taken", {"Worker": (1, "Never", "pass")}))
    assert run_cli("submit", str(path), "--wait").returncode == 0
    assert_short_error(run_cli("submit", str(path)), 2, "already exists")
    assert_short_error(run_cli("logs", "taken", "--replica", "ps-7"), 2, "no replica 'ps-7'")


def test_bad_options_are_usage_errors():
    assert_short_error(run_cli("logs", "x", "--tail", "-3"), 2, "--tail")
    assert_short_error(run_cli("list", "--backend", "mars"), 2, "--backend")
    assert_short_error(run_cli("frobnicate"), 2)


def test_failed_job_exits_1_and_wait_shows_progress(tmp_path, isolated_home, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_job(tmp_path, tfjob_yaml("boom", {"Worker": (1, "Never", "print('about to fail'); raise SystemExit(4)")}))
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
    path = write_job(tmp_path, tfjob_yaml("talk", {"Worker": (1, "Never", "for i in range(3): print('n', i)")}))
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
    code = ("import sys; from kubeflow_jupyter.cli import build_parser; build_parser().parse_args(['list']); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'grpc', 'kubernetes', 'ipywidgets'}))")
    heavy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert heavy.strip() == "[]"
    help_text = run_cli("--help").stdout
    for verb in ("submit", "list", "get", "logs", "wait", "delete", "serve"):
        assert f"    {verb} " in help_text
