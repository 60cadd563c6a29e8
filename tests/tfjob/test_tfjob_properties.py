"""Property-based: whatever the input, the parser returns a model or raises SpecError — nothing else."""

from __future__ import annotations

import copy

import yaml
from crd_check import assert_valid_tfjob
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeflow_jupyter.errors import SpecError
from kubeflow_jupyter.tfjob import ParseResult, parse_tfjob

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.sampled_from(["tensorflow", "Worker", "ps", "Never", "ExitCode", "2222"]),
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "image",
                    "replicas",
                    "template",
                    "spec",
                    "containers",
                    "worker",
                    "tfReplicaSpecs",
                    "metadata",
                    "restartPolicy",
                    "runPolicy",
                    "x",
                ]
            )
            | st.text(max_size=5),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=25,
)

BASE = {
    "apiVersion": "kubeflow.org/v1",
    "kind": "TFJob",
    "metadata": {"name": "job"},
    "spec": {
        "tfReplicaSpecs": {
            "Worker": {
                "replicas": 2,
                "template": {
                    "spec": {"containers": [{"name": "tensorflow", "image": "tf", "command": ["python", "a.py"]}]}
                },
            }
        }
    },
}
PATHS = [
    (),
    ("metadata",),
    ("metadata", "name"),
    ("spec",),
    ("spec", "tfReplicaSpecs"),
    ("spec", "tfReplicaSpecs", "Worker"),
    ("spec", "tfReplicaSpecs", "Worker", "replicas"),
    ("spec", "tfReplicaSpecs", "Worker", "template"),
    ("spec", "tfReplicaSpecs", "Worker", "template", "spec"),
]


def check_outcome(source) -> None:
    try:
        result = parse_tfjob(source)
    except SpecError as e:
        assert e.problems and str(e).startswith("invalid TFJob")
        return
    assert isinstance(result, ParseResult)
    assert_valid_tfjob(result.job.manifest)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text(text):
    check_outcome(text)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=100))
def test_any_bytes(data):
    check_outcome(data)


@settings(max_examples=150, deadline=None)
@given(json_like)
def test_any_yaml_document(value):
    check_outcome(yaml.safe_dump(value))


@settings(max_examples=250, deadline=None)
@given(st.sampled_from(PATHS), st.text(max_size=10) | json_like)
def test_mutated_valid_manifest(path, value):
    m = copy.deepcopy(BASE)
    if not path:
        check_outcome(value if isinstance(value, (dict, str)) else m)
        return
    node = m
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    check_outcome(m)
