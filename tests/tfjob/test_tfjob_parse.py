"""Parsing, defaults, legacy conversion and validation of TFJob manifests."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from crd_check import assert_valid_tfjob, crd_openapi_schema

from kubeflow_jupyter.client import TFJobClient
from kubeflow_jupyter.errors import SpecError
from kubeflow_jupyter.tfjob import parse_tfjob
from kubeflow_jupyter.tfjob.schema import crd_schema

DATA = Path(__file__).resolve().parents[1] / "data"
SEED = (DATA / "seed-example.yaml").read_text()

MINIMAL = """
apiVersion: kubeflow.org/v1
kind: TFJob
metadata: {name: mnist}
spec:
  tfReplicaSpecs:
    worker:
      template:
        spec:
          containers: [{name: tensorflow, image: tf:2, command: [python, train.py]}]
"""


def manifest(**replicas) -> dict:
    """A valid v1 manifest with the given replica specs (each gets a tensorflow container)."""
    specs = {}
    for rtype, fields in replicas.items():
        specs[rtype] = {"template": {"spec": {"containers": [{"name": "tensorflow", "image": "tf:2"}]}}, **fields}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": "job"},
        "spec": {"tfReplicaSpecs": specs},
    }


def test_defaults_are_the_operators():
    job = parse_tfjob(MINIMAL).job
    worker = job.replica_specs["Worker"]
    assert (worker.replicas, worker.restart_policy, worker.port) == (1, "Never", 2222)
    assert job.run_policy.clean_pod_policy == "None"
    assert job.success_policy == ""
    assert worker.container["ports"] == [{"name": "tfjob-port", "containerPort": 2222}]
    assert job.manifest["spec"]["runPolicy"] == {"cleanPodPolicy": "None"}


@pytest.mark.parametrize(
    "key,canonical",
    [
        ("worker", "Worker"),
        ("WORKER", "Worker"),
        ("ps", "PS"),
        ("Ps", "PS"),
        ("chief", "Chief"),
        ("master", "Master"),
        ("evaluator", "Evaluator"),
    ],
)
def test_replica_keys_are_case_normalised(key, canonical):
    job = parse_tfjob(manifest(**{key: {}})).job
    assert list(job.replica_specs) == [canonical]
    assert list(job.manifest["spec"]["tfReplicaSpecs"]) == [canonical]


def test_seed_legacy_job_is_converted_with_a_notice():
    result = parse_tfjob(SEED)
    job = result.job
    assert "converted" in result.notices[0] and "tensorflow.org/v1alpha1" in result.notices[0]
    assert any("parameter server" in n for n in result.notices)
    assert {t: s.replicas for t, s in job.replica_specs.items()} == {"Master": 1, "PS": 2, "Worker": 1}
    assert job.replica_specs["Master"].restart_policy == "OnFailure"
    assert job.replica_specs["Worker"].restart_policy == "OnFailure"
    assert job.replica_specs["PS"].restart_policy == "Never"
    # the seed's master/worker rely on the image entrypoint; the template-less PS runs a gRPC server
    assert job.replica_specs["Master"].command == []
    ps_argv = job.replica_specs["PS"].command
    assert ps_argv[:2] == ["python", "-c"] and "tf.distribute.Server" in ps_argv[2]
    assert "restartPolicy" not in job.replica_specs["Master"].template["spec"]
    assert job.chief_type == "Master" and job.total_replicas == 4
    assert_valid_tfjob(job.manifest)


def test_legacy_tfport_becomes_the_tfjob_port():
    legacy = yaml.safe_load(SEED)
    legacy["spec"]["replicaSpecs"][1]["tfPort"] = 3333
    job = parse_tfjob(legacy).job
    assert job.replica_specs["Worker"].port == 3333


def test_command_override_replaces_every_tensorflow_container_command_and_args():
    job = parse_tfjob(SEED, command=["python", "examples/tf_sample/tf_sample.py"]).job
    for spec in job.replica_specs.values():
        assert spec.command == ["python", "examples/tf_sample/tf_sample.py"]
        assert "args" not in spec.container


def client_in(namespace: str) -> TFJobClient:
    """A client whose backend works in ``namespace`` (prepare never touches the backend otherwise)."""
    return TFJobClient(backend=SimpleNamespace(name="stub", namespace=namespace))


def test_name_override_and_the_manifests_namespace_as_written():
    job = parse_tfjob(MINIMAL, name="other").job
    assert (job.name, job.namespace) == ("other", None)
    with_ns = yaml.safe_load(MINIMAL)
    with_ns["metadata"]["namespace"] = "mine"
    assert parse_tfjob(with_ns).job.namespace == "mine", "parsing decides no namespace: the client does"


def test_prepare_places_the_job_in_the_clients_namespace():
    job = client_in("team-a").prepare(MINIMAL, name="other").job
    assert (job.name, job.namespace, job.manifest["metadata"]["namespace"]) == ("other", "team-a", "team-a")
    with_ns = yaml.safe_load(MINIMAL)
    with_ns["metadata"]["namespace"] = "team-a"
    assert client_in("team-a").prepare(with_ns).job.namespace == "team-a"
    without = yaml.safe_load(MINIMAL)
    client_in("team-a").prepare(without)
    assert "namespace" not in without["metadata"], "the caller's manifest is left as it was"


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("v1", id="v1"),
        pytest.param("legacy", id="v1alpha1"),
    ],
)
def test_a_manifest_in_another_namespace_is_refused(source):
    data = yaml.safe_load(MINIMAL if source == "v1" else SEED)
    data["metadata"]["namespace"] = "mine"
    with pytest.raises(SpecError) as err:
        client_in("team-a").prepare(data)
    assert [(p.path, p.message) for p in err.value.problems] == [
        (
            "metadata.namespace",
            "'mine' is not the namespace this client works in ('team-a'): remove metadata.namespace, or use --namespace mine",
        )
    ]


def test_the_namespace_rule_is_one_function():
    from kubeflow_jupyter.client import namespace_problem

    assert namespace_problem(None, "a") is None and namespace_problem("", "a") is None
    assert namespace_problem("a", "a") is None
    assert str(namespace_problem("b", "a")) == (
        "metadata.namespace: 'b' is not the namespace this client works in ('a'): "
        "remove metadata.namespace, or use --namespace b"
    )


@pytest.mark.parametrize("replicas", [2, 0, 3])
def test_legacy_master_must_have_one_replica(replicas):
    seed = yaml.safe_load(SEED)
    seed["spec"]["replicaSpecs"].append(seed["spec"]["replicaSpecs"].pop(0))  # MASTER last: its index is 2
    seed["spec"]["replicaSpecs"][2]["replicas"] = replicas
    with pytest.raises(SpecError) as err:
        parse_tfjob(seed)
    [problem] = err.value.problems
    assert problem.path == "spec.replicaSpecs[2].replicas"
    assert "The MASTER must have Replicas = 1" in problem.message and f"got {replicas}" in problem.message


def test_legacy_master_with_one_replica_or_none_given_is_accepted():
    seed = yaml.safe_load(SEED)
    assert parse_tfjob(seed).job.replica_specs["Master"].replicas == 1
    del seed["spec"]["replicaSpecs"][0]["replicas"]
    assert parse_tfjob(seed).job.replica_specs["Master"].replicas == 1
    seed["spec"]["replicaSpecs"][1]["replicas"] = 3  # many WORKERs are fine
    assert parse_tfjob(seed).job.replica_specs["Worker"].replicas == 3


def test_unknown_fields_with_validate_warn_warn_and_are_pruned_like_the_api_server():
    m = manifest(Worker={"template": {"spec": {"containers": [{"name": "tensorflow", "image": "x", "comand": ["a"]}]}}})
    m["spec"]["colour"] = "red"
    result = parse_tfjob(m, validate="warn")
    assert any("spec.colour: unknown field" in w for w in result.warnings)
    assert any("comand: unknown field (did you mean 'command'?)" in w for w in result.warnings)
    assert "colour" not in result.job.manifest["spec"]
    assert_valid_tfjob(result.job.manifest)


def test_input_dict_is_not_mutated():
    m = manifest(worker={})
    before = json.dumps(m, sort_keys=True)
    parse_tfjob(m, name="x", command=["a"])
    assert json.dumps(m, sort_keys=True) == before


# Each broken manifest → the field path the error must name (and every problem is reported at once).
BROKEN = [
    ("", "empty input"),
    ("   \n# only a comment\n", "empty input"),
    ("- a\n- b\n", "got list"),
    ("just a string", "got str"),
    ("a: [\n", "YAML syntax error at line"),
    ("apiVersion: kubeflow.org/v1\nkind: TFJob\n---\nkind: TFJob\n", "more than one document"),
    (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {tfReplicaSpecs: {}}",
        "apiVersion: must be kubeflow.org/v1",
    ),
    (manifest(Worker={}) | {"kind": "PyTorchJob"}, "kind: must be TFJob"),
    ({"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "a"}}, "spec: required"),
    (
        {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "a"}, "spec": {}},
        "spec.tfReplicaSpecs: required",
    ),
    (
        {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "a"}, "spec": {"tfReplicaSpecs": {}}},
        "spec.tfReplicaSpecs: needs at least one replica type",
    ),
    (
        {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "a"}, "spec": []},
        "spec: must be a mapping",
    ),
    (manifest(Worker={}) | {"metadata": {}}, "metadata.name: required"),
    (manifest(Worker={}) | {"metadata": {"name": "My_Job"}}, "metadata.name: 'My_Job' is not a DNS-1035 label"),
    (manifest(Worker={}) | {"metadata": {"name": "1job"}}, "metadata.name: '1job' is not a DNS-1035 label"),
    (manifest(Worker={}) | {"metadata": {"name": "a" * 64}}, "at most 63 characters"),
    (manifest(Worker={}) | {"metadata": {"name": "a", "namespace": "Bad NS"}}, "metadata.namespace"),
    (manifest(Worker={"replicas": -1}), "spec.tfReplicaSpecs.Worker.replicas: must be >= 0 (got -1)"),
    (
        manifest(Worker={"replicas": "two"}),
        "spec.tfReplicaSpecs.Worker.replicas: must be an integer (got string 'two')",
    ),
    (manifest(Worker={"replicas": "2"}), "remove the quotes"),
    (manifest(Worker={"replicas": True}), "spec.tfReplicaSpecs.Worker.replicas: must be an integer"),
    (manifest(Worker={"replicas": 0}), "every replica type has replicas: 0"),
    (
        manifest(Worker={"restartPolicy": "Sometimes"}),
        "spec.tfReplicaSpecs.Worker.restartPolicy: must be one of Always, OnFailure, Never, ExitCode",
    ),
    (manifest(Boss={}), "spec.tfReplicaSpecs.Boss: unknown replica type"),
    (manifest(worker={}, Worker={}), "Worker is given twice"),
    (manifest(Chief={}, Master={}), "must not have more than 1 Chief or Master role"),
    (manifest(Worker={"template": None}), "spec.tfReplicaSpecs.Worker.template: required"),
    (
        manifest(Worker={"template": {"spec": {"containers": []}}}),
        "spec.tfReplicaSpecs.Worker.template.spec.containers: must be specified",
    ),
    (
        manifest(Worker={"template": {"spec": {"containers": [{"name": "main", "image": "x"}]}}}),
        "must have at least one container with name tensorflow",
    ),
    (
        manifest(Worker={"template": {"spec": {"containers": [{"name": "tensorflow"}]}}}),
        "spec.tfReplicaSpecs.Worker.template.spec.containers[0].image: required",
    ),
    (
        manifest(Worker={"template": {"spec": {"containers": [{"image": "x"}]}}}),
        "spec.tfReplicaSpecs.Worker.template.spec.containers[0].name: required",
    ),
    (manifest(Worker={"template": {"spec": {"containers": "tensorflow"}}}), "containers: must be a list"),
    (
        manifest(
            Worker={
                "template": {"spec": {"containers": [{"name": "tensorflow", "image": "x", "command": "python a.py"}]}}
            }
        ),
        "containers[0].command: must be a list",
    ),
    (
        manifest(
            Worker={
                "template": {
                    "spec": {"containers": [{"name": "tensorflow", "image": "x", "env": [{"name": "A", "value": 3}]}]}
                }
            }
        ),
        "env[0].value: must be a string (got number 3): quote it",
    ),
    (
        manifest(Worker={})
        | {
            "spec": {
                "tfReplicaSpecs": {
                    "Worker": {"template": {"spec": {"containers": [{"name": "tensorflow", "image": "x"}]}}}
                },
                "runPolicy": {"cleanPodPolicy": "Sometimes"},
            }
        },
        "spec.runPolicy.cleanPodPolicy: must be one of All, Running, None",
    ),
    (
        manifest(Worker={})
        | {
            "spec": {
                "tfReplicaSpecs": {
                    "Worker": {"template": {"spec": {"containers": [{"name": "tensorflow", "image": "x"}]}}}
                },
                "runPolicy": {"backoffLimit": -2},
            }
        },
        "spec.runPolicy.backoffLimit: must be >= 0",
    ),
    (
        manifest(Worker={})
        | {
            "spec": {
                "tfReplicaSpecs": {
                    "Worker": {"template": {"spec": {"containers": [{"name": "tensorflow", "image": "x"}]}}}
                },
                "runPolicy": {"suspend": "yes"},
            }
        },
        "spec.runPolicy.suspend: must be true or false",
    ),
    (
        manifest(Worker={})
        | {
            "spec": {
                "tfReplicaSpecs": {
                    "Worker": {"template": {"spec": {"containers": [{"name": "tensorflow", "image": "x"}]}}}
                },
                "successPolicy": "Most",
            }
        },
        "spec.successPolicy",
    ),
    (
        {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "a"}, "specs": {}},
        "specs: unknown field (did you mean 'spec'?)",
    ),
    # the seed's legacy format
    (
        SEED.replace("tfReplicaType: WORKER", "tfReplicaType: BOSS"),
        "spec.replicaSpecs[1].tfReplicaType: must be one of MASTER, WORKER, PS",
    ),
    (
        SEED.replace("tfReplicaType: PS", "tfReplicaType: MASTER"),
        "spec.replicaSpecs[2].tfReplicaType: MASTER is listed twice",
    ),
    (
        SEED.replace("- replicas: 1\n      tfReplicaType: MASTER", "- replicas: 2\n      tfReplicaType: MASTER"),
        "spec.replicaSpecs[0].replicas: The MASTER must have Replicas = 1",
    ),
    (SEED.replace("replicaSpecs:", "replicas:"), "spec.replicaSpecs: required"),
    (
        "apiVersion: tensorflow.org/v1alpha1\nkind: TfJob\nmetadata: {name: a}\nspec:\n  replicaSpecs:\n  - tfReplicaType: MASTER\n",
        "spec.replicaSpecs[0].template: required for MASTER replicas",
    ),
]


@pytest.mark.parametrize("source,expected", BROKEN, ids=[str(i) for i in range(len(BROKEN))])
def test_broken_manifests_name_the_field(source, expected):
    with pytest.raises(SpecError) as err:
        parse_tfjob(source)
    assert expected in str(err.value)
    assert err.value.problems, "a SpecError always carries its problems"


def test_all_problems_are_reported_at_once():
    m = manifest(Worker={"replicas": -1, "restartPolicy": "Maybe"}, Boss={})
    m["metadata"]["name"] = "Bad_Name"
    with pytest.raises(SpecError) as err:
        parse_tfjob(m)
    paths = {p.path for p in err.value.problems}
    assert {
        "metadata.name",
        "spec.tfReplicaSpecs.Worker.replicas",
        "spec.tfReplicaSpecs.Worker.restartPolicy",
        "spec.tfReplicaSpecs.Boss",
    } <= paths


@pytest.mark.parametrize("levels", [9, 12])
def test_alias_bombs_fail_fast(levels):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    with pytest.raises(SpecError, match=r"aliases|expands to more than"):
        parse_tfjob("\n".join(lines))


def test_huge_and_deep_documents_fail_fast():
    with pytest.raises(SpecError, match="KiB"):
        parse_tfjob("a: " + "x" * (600 * 1024))
    with pytest.raises(SpecError, match=r"nested too deeply|expands"):
        parse_tfjob("[" * 5000 + "]" * 5000)


def test_packaged_schema_is_the_real_crd_schema():
    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "description"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    assert crd_schema() == strip(crd_openapi_schema())


@pytest.mark.parametrize("source", [SEED, MINIMAL])
def test_emitted_manifests_validate_against_the_real_crd(source):
    assert_valid_tfjob(parse_tfjob(source, command=["python", "x.py"]).job.manifest)


def test_examples_validate_against_the_real_crd():
    examples = Path(__file__).resolve().parents[2] / "examples"
    found = [p for p in examples.rglob("*.y*ml") if "kind: TFJob" in p.read_text() or 'kind: "TfJob"' in p.read_text()]
    for path in found:
        assert_valid_tfjob(parse_tfjob(path.read_bytes(), command=["python", "x.py"]).job.manifest)
