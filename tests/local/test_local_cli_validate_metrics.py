"""The CLI as kubectl users type it: a typo'd field refused (strict), --validate=warn, and metrics."""

from __future__ import annotations

import yaml
from support.cli import cli_in_process
from support.manifests import tfjob_manifest

from kubeflow_jupyter.client import TFJobClient

REPORTS = "from kubeflow_jupyter import report\nfor step in range(3):\n    report(step, loss=1.0 / (step + 1))\n"


def typo_yaml(tmp_path, name: str) -> str:
    manifest = tfjob_manifest(name)
    worker = manifest["spec"]["tfReplicaSpecs"]["Worker"]
    worker["replcas"] = worker.pop("replicas")
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return str(path)


def test_a_typod_field_is_refused_naming_it_and_nothing_is_created(capsys, tmp_path):
    code, out, err = cli_in_process(capsys, "submit", typo_yaml(tmp_path, "typo"))
    assert code == 2 and out == ""
    assert "spec.tfReplicaSpecs.Worker.replcas: unknown field (did you mean 'replicas'?)" in err
    assert "--validate=warn" in err and "Traceback" not in err
    assert TFJobClient("local").list() == []


def test_validate_warn_drops_the_field_with_a_warning_and_ignore_silently(capsys, tmp_path):
    code, out, err = cli_in_process(capsys, "submit", typo_yaml(tmp_path, "warned"), "--validate=warn", "--wait")
    assert code == 0, err
    assert "warning: spec.tfReplicaSpecs.Worker.replcas: unknown field (did you mean 'replicas'?), ignored" in err
    assert TFJobClient("local").get("warned").state == "Succeeded"
    code, out, err = cli_in_process(capsys, "submit", typo_yaml(tmp_path, "quiet"), "--validate", "ignore")
    assert code == 0 and "created" in out and "replcas" not in err


def test_metrics_prints_the_reported_steps_as_a_table_and_as_csv(capsys, tmp_path):
    path = tmp_path / "reports.yaml"
    path.write_text(yaml.safe_dump(tfjob_manifest("reports", {"Worker": (1, "Never", REPORTS)})))
    assert cli_in_process(capsys, "submit", str(path), "--wait")[0] == 0
    code, out, err = cli_in_process(capsys, "metrics", "reports", "-o", "csv")
    assert code == 0, err
    assert out.splitlines() == [
        "replica,step,loss",
        "worker-0,0,1.0",
        "worker-0,1,0.5",
        "worker-0,2,0.3333333333333333",
    ]
    code, out, err = cli_in_process(capsys, "metrics", "reports")
    assert code == 0 and out.split()[:3] == ["replica", "step", "loss"]
