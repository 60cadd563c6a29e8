"""kubectl's field validation for TFJob specs: strict (the default) refuses unknown fields."""

from __future__ import annotations

import pytest

from kubeflow_jupyter.errors import SpecError
from kubeflow_jupyter.tfjob.spec import parse_tfjob

TYPO = """
apiVersion: kubeflow.org/v1
kind: TFJob
metadata: {name: typo}
spec:
  tfReplicaSpecs:
    Worker:
      replcas: 2
      template:
        spec:
          containers: [{name: tensorflow, image: python, command: [python, -c, "pass"]}]
"""


def test_strict_is_the_default_and_refuses_a_typo_naming_the_field_the_fix_and_the_option():
    with pytest.raises(SpecError) as caught:
        parse_tfjob(TYPO)
    [problem] = caught.value.problems
    assert problem.path == "spec.tfReplicaSpecs.Worker.replcas"
    assert "unknown field (did you mean 'replicas'?)" in problem.message
    assert "--validate=warn" in problem.message


def test_strict_lists_unknown_fields_with_the_other_problems():
    text = TYPO.replace("image: python, ", "").replace("replcas: 2", "replcas: 2\n      colour: red")
    with pytest.raises(SpecError) as caught:
        parse_tfjob(text)
    paths = [p.path for p in caught.value.problems]
    assert "spec.tfReplicaSpecs.Worker.replcas" in paths and "spec.tfReplicaSpecs.Worker.colour" in paths
    assert any("image" in p.path for p in caught.value.problems)


def test_warn_drops_the_field_with_a_warning_and_ignore_drops_it_silently():
    warned = parse_tfjob(TYPO, validate="warn")
    assert warned.job.replica_specs["Worker"].replicas == 1
    assert any("replcas: unknown field (did you mean 'replicas'?), ignored" in w for w in warned.warnings)
    ignored = parse_tfjob(TYPO, validate="ignore")
    assert ignored.job.replica_specs["Worker"].replicas == 1 and ignored.warnings == []
    assert "replcas" not in str(ignored.job.manifest)


def test_a_clean_spec_is_the_same_in_every_mode():
    clean = TYPO.replace("replcas", "replicas")
    jobs = [parse_tfjob(clean, validate=mode).job.manifest for mode in ("strict", "warn", "ignore")]
    assert jobs[0] == jobs[1] == jobs[2] and jobs[0]["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] == 2


def test_an_unknown_validation_mode_is_refused_naming_the_values():
    with pytest.raises(SpecError, match=r"--validate: must be one of strict, warn, ignore \(got 'loose'\)"):
        parse_tfjob(TYPO, validate="loose")


def test_the_legacy_format_is_converted_leniently_in_every_mode():
    from pathlib import Path

    seed = (Path(__file__).parents[1] / "data" / "seed-example.yaml").read_text()
    extra = seed.replace("spec:\n", "spec:\n  colour: red\n", 1)
    result = parse_tfjob(extra)
    assert any("spec.colour: unknown v1alpha1 field" in w for w in result.warnings)
