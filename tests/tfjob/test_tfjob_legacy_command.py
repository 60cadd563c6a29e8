"""The seed's notice says what will actually run on its template-less PS replicas."""

from __future__ import annotations

from pathlib import Path

from kubeflow_jupyter.tfjob.spec import parse_tfjob

SEED = (Path(__file__).parents[1] / "data" / "seed-example.yaml").read_text()


def test_without_command_the_ps_replicas_run_the_stock_parameter_server():
    notices = parse_tfjob(SEED).notices
    assert any("plain TensorFlow gRPC parameter server" in n for n in notices)


def test_with_command_the_notice_says_the_ps_replicas_run_that_command():
    result = parse_tfjob(SEED, command=["python", "examples/tf_sample/tf_sample.py"])
    [ps_notice] = [n for n in result.notices if "PS replicas" in n]
    assert "python examples/tf_sample/tf_sample.py" in ps_notice
    assert "not v1alpha1's plain gRPC parameter server" in ps_notice
    ps = result.job.manifest["spec"]["tfReplicaSpecs"]["PS"]["template"]["spec"]["containers"][0]
    assert ps["command"] == ["python", "examples/tf_sample/tf_sample.py"]  # what the notice says runs
