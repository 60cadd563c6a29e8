"""with_restricted_defaults: the Pod Security `restricted` securityContext the Kubernetes backend
fills into replica templates where the user left it out (never over a value the user set)."""

from __future__ import annotations

import copy
import functools
import importlib.util

import jsonschema
import pytest
import yaml
from crd_check import assert_valid_tfjob, strict_schema
from hypothesis import given, settings
from hypothesis import strategies as st
from support.paths import REPO
from support.restricted import CONTAINER_DEFAULTS, POD_DEFAULTS

from kubeflow_jupyter.tfjob import parse_tfjob
from kubeflow_jupyter.tfjob.security import with_restricted_defaults

EXAMPLES = REPO / "examples"

# tests/hub/pod_security.py: the checks of Pod Security admission (`restricted`), by file path.
_spec = importlib.util.spec_from_file_location("_pod_security", REPO / "tests" / "hub" / "pod_security.py")
pod_security = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pod_security)
restricted_problems = pod_security.restricted_problems


@functools.lru_cache(maxsize=1)
def crd_validator():
    """assert_valid_tfjob's check with the schema checked once (the property test calls it often)."""
    schema = strict_schema()
    return jsonschema.validators.validator_for(schema)(schema)


def seed_jobs() -> dict[str, dict]:
    """The seed's v1alpha1 job as converted (its PS template is the converter's), and every v1 example."""
    jobs = {"tfjob-legacy": parse_tfjob((EXAMPLES / "tfjob-legacy.yaml").read_text()).job.to_manifest()}
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        if path.name != "tfjob-legacy.yaml":
            jobs[str(path.relative_to(EXAMPLES))] = parse_tfjob(path.read_text()).job.to_manifest()
    assert {"tfjob-legacy", "tf_sample.yaml", "digits/tfjob.yaml"} <= set(jobs)
    return jobs


SEED_JOBS = seed_jobs()


def job(pod: dict | None = None, **container) -> dict:
    """A v1 TFJob with one Worker template: ``pod`` fields merged into its spec, ``container`` into its container."""
    spec = {
        "containers": [
            {
                "name": "tensorflow",
                "image": "tensorflow/tensorflow:2.21.0",
                "command": ["python", "train.py"],
                **container,
            }
        ],
        **(pod or {}),
    }
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": "job"},
        "spec": {"tfReplicaSpecs": {"Worker": {"replicas": 1, "template": {"spec": spec}}}},
    }


def pod_of(manifest: dict, replica: str = "Worker") -> dict:
    return manifest["spec"]["tfReplicaSpecs"][replica]["template"]["spec"]


def containers_of(manifest: dict, replica: str = "Worker") -> list[dict]:
    pod = pod_of(manifest, replica)
    return (pod.get("initContainers") or []) + pod["containers"]


# -- the seed's jobs --------------------------------------------------------------------------------
@pytest.mark.parametrize("example", sorted(SEED_JOBS))
def test_every_seed_template_gets_the_whole_restricted_context(example):
    given_job = SEED_JOBS[example]
    before = copy.deepcopy(given_job)
    out = with_restricted_defaults(given_job)
    assert given_job == before  # the input is not changed
    assert out["spec"]["tfReplicaSpecs"].keys() == given_job["spec"]["tfReplicaSpecs"].keys()
    for replica in out["spec"]["tfReplicaSpecs"]:
        pod = pod_of(out, replica)
        assert pod["securityContext"] == POD_DEFAULTS
        for container in containers_of(out, replica):
            assert container["securityContext"] == CONTAINER_DEFAULTS
        assert restricted_problems(pod) == [], (example, replica)
    assert_valid_tfjob(out)
    # Nothing but the securityContexts differs.
    stripped = copy.deepcopy(out)
    for replica in stripped["spec"]["tfReplicaSpecs"]:
        pod_of(stripped, replica).pop("securityContext")
        for container in containers_of(stripped, replica):
            container.pop("securityContext")
    assert stripped == given_job


def test_the_converted_parameter_servers_are_covered():
    """The PS template of the v1alpha1 job is written by the converter: the user cannot fix it."""
    out = with_restricted_defaults(SEED_JOBS["tfjob-legacy"])
    ps = pod_of(out, "PS")
    assert ps["containers"][0]["image"].startswith("tensorflow/tensorflow:")  # its user is root
    assert ps["securityContext"]["runAsUser"] == 1000
    assert restricted_problems(ps) == []


def test_the_result_shares_nothing_with_the_input():
    given_job = SEED_JOBS["tf_sample.yaml"]
    before = copy.deepcopy(given_job)
    out = with_restricted_defaults(given_job)
    pod_of(out)["containers"][0]["command"].append("--more")
    pod_of(out)["securityContext"]["seccompProfile"]["type"] = "Localhost"
    again = with_restricted_defaults(given_job)
    assert given_job == before
    assert pod_of(again)["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_idempotent():
    for manifest in SEED_JOBS.values():
        once = with_restricted_defaults(manifest)
        assert with_restricted_defaults(once) == once


# -- what the user set stays ----------------------------------------------------------------------------
def test_user_pod_values_are_kept_and_only_absent_fields_filled():
    out = with_restricted_defaults(
        job(
            {
                "securityContext": {
                    "runAsUser": 2000,
                    "seccompProfile": {"type": "Localhost", "localhostProfile": "tf.json"},
                    "supplementalGroups": [5],
                }
            }
        )
    )
    assert pod_of(out)["securityContext"] == {
        "runAsUser": 2000,
        "seccompProfile": {"type": "Localhost", "localhostProfile": "tf.json"},
        "supplementalGroups": [5],
        "runAsNonRoot": True,
    }  # the user chose the uid: no group/fsGroup either
    assert_valid_tfjob(out)


def test_a_user_group_is_kept_when_the_uid_is_filled_in():
    out = with_restricted_defaults(job({"securityContext": {"runAsGroup": 3000}}))
    assert pod_of(out)["securityContext"] == {**POD_DEFAULTS, "runAsGroup": 3000}
    out = with_restricted_defaults(job({"securityContext": {"fsGroup": 4000}}))
    assert pod_of(out)["securityContext"] == {**POD_DEFAULTS, "fsGroup": 4000}


def test_user_container_values_are_kept():
    out = with_restricted_defaults(
        job(
            securityContext={
                "allowPrivilegeEscalation": True,
                "capabilities": {"add": ["NET_BIND_SERVICE"]},
                "readOnlyRootFilesystem": True,
            }
        )
    )
    assert containers_of(out)[0]["securityContext"] == {
        "allowPrivilegeEscalation": True,
        "readOnlyRootFilesystem": True,
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
    }  # drop filled in, add kept
    out = with_restricted_defaults(job(securityContext={"capabilities": {"drop": ["NET_RAW"]}}))
    assert containers_of(out)[0]["securityContext"]["capabilities"] == {"drop": ["NET_RAW"]}  # not replaced
    out = with_restricted_defaults(
        job(securityContext={"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}})
    )
    assert containers_of(out)[0]["securityContext"] == CONTAINER_DEFAULTS


def test_a_user_run_as_non_root_false_is_kept_and_gets_no_uid():
    out = with_restricted_defaults(job({"securityContext": {"runAsNonRoot": False}}))
    assert pod_of(out)["securityContext"] == {"runAsNonRoot": False, "seccompProfile": {"type": "RuntimeDefault"}}
    assert restricted_problems(pod_of(out))  # still not restricted: the user's choice shows


def test_a_container_run_as_non_root_false_keeps_it_and_the_pod_default_does_not_mask_it():
    out = with_restricted_defaults(job(securityContext={"runAsNonRoot": False}))
    assert containers_of(out)[0]["securityContext"]["runAsNonRoot"] is False
    assert any("runAsNonRoot" in p for p in restricted_problems(pod_of(out)))


@pytest.mark.parametrize("where", ["pod", "container"])
def test_an_explicit_root_uid_gets_no_non_root_default(where):
    """runAsNonRoot: true beside uid 0 would only make the kubelet refuse to start it: leave both to the user."""
    manifest = job({"securityContext": {"runAsUser": 0}}) if where == "pod" else job(securityContext={"runAsUser": 0})
    out = with_restricted_defaults(manifest)
    pod_context = pod_of(out)["securityContext"]
    assert "runAsNonRoot" not in pod_context
    assert pod_context.get("runAsUser", 0) == 0 and "runAsGroup" not in pod_context
    assert any("runAsUser=0" in p for p in restricted_problems(pod_of(out)))


def test_a_uid_in_every_container_needs_none_in_the_pod():
    manifest = job(securityContext={"runAsUser": 1234})
    pod_of(manifest)["initContainers"] = [{"name": "fetch", "image": "busybox", "securityContext": {"runAsUser": 42}}]
    out = with_restricted_defaults(manifest)
    assert pod_of(out)["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert [c["securityContext"]["runAsUser"] for c in containers_of(out)] == [42, 1234]
    assert restricted_problems(pod_of(out)) == []


def test_a_container_without_a_uid_still_gets_the_pods():
    manifest = job(securityContext={"runAsUser": 1234})
    pod_of(manifest)["initContainers"] = [{"name": "fetch", "image": "busybox"}]  # would run as the image's root
    out = with_restricted_defaults(manifest)
    assert pod_of(out)["securityContext"] == POD_DEFAULTS
    assert containers_of(out)[1]["securityContext"]["runAsUser"] == 1234


@pytest.mark.parametrize("context", [{"privileged": True}, {"capabilities": {"add": ["CAP_SYS_ADMIN"]}}])
def test_no_escalation_default_beside_privileged_or_sys_admin(context):
    """The Pod API refuses allowPrivilegeEscalation: false with privileged or CAP_SYS_ADMIN; the user's
    value stays, and the job is still not `restricted` (the policy refuses it for the user's field)."""
    out = with_restricted_defaults(job(securityContext=copy.deepcopy(context)))
    given_context = containers_of(out)[0]["securityContext"]
    assert "allowPrivilegeEscalation" not in given_context
    assert {k: v for k, v in given_context.items() if k != "capabilities"} == {
        k: v for k, v in context.items() if k != "capabilities"
    }
    assert "ALL" in given_context["capabilities"]["drop"]
    assert restricted_problems(pod_of(out))


def test_sys_admin_spelled_without_cap_gets_the_escalation_default():
    """The Pod API refuses only the spelling CAP_SYS_ADMIN beside allowPrivilegeEscalation: false."""
    out = with_restricted_defaults(job(securityContext={"capabilities": {"add": ["SYS_ADMIN"]}}))
    assert containers_of(out)[0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]},
    }
    problems = restricted_problems(pod_of(out))
    assert problems and all("capabilities.add" in p for p in problems)  # the user's, and only it


def test_init_containers_get_the_container_defaults():
    manifest = job()
    pod_of(manifest)["initContainers"] = [
        {"name": "fetch", "image": "busybox:1.36"},
        {"name": "own", "image": "busybox:1.36", "securityContext": {"allowPrivilegeEscalation": True}},
    ]
    out = with_restricted_defaults(manifest)
    fetch, own, main = containers_of(out)
    assert fetch["securityContext"] == main["securityContext"] == CONTAINER_DEFAULTS
    assert own["securityContext"] == {"allowPrivilegeEscalation": True, "capabilities": {"drop": ["ALL"]}}
    assert_valid_tfjob(out)


def test_a_null_security_context_counts_as_absent():
    manifest = job({"securityContext": None}, securityContext=None)
    out = with_restricted_defaults(manifest)
    assert pod_of(out)["securityContext"] == POD_DEFAULTS
    assert containers_of(out)[0]["securityContext"] == CONTAINER_DEFAULTS


def test_null_fields_count_as_absent():
    manifest = job(
        {"securityContext": {"runAsNonRoot": None, "runAsUser": None, "seccompProfile": None}},
        securityContext={"allowPrivilegeEscalation": None, "capabilities": {"drop": None}},
    )
    out = with_restricted_defaults(manifest)
    assert pod_of(out)["securityContext"] == POD_DEFAULTS
    assert containers_of(out)[0]["securityContext"] == CONTAINER_DEFAULTS


def test_a_windows_pod_is_left_alone():
    """Those fields are Linux-only: the API server refuses seccompProfile, runAsUser, capabilities ... there."""
    manifest = job({"os": {"name": "windows"}})
    assert with_restricted_defaults(manifest) == manifest


@pytest.mark.parametrize(
    "manifest",
    [
        {},
        {"spec": None},
        {"spec": {}},
        {"spec": {"tfReplicaSpecs": None}},
        {"spec": {"tfReplicaSpecs": []}},
        {"spec": {"tfReplicaSpecs": {"Worker": None}}},
        {"spec": {"tfReplicaSpecs": {"Worker": {"template": {}}}}},
        {"spec": {"tfReplicaSpecs": {"Worker": {"template": {"spec": {"securityContext": "x", "containers": [1]}}}}}},
    ],
)
def test_anything_not_shaped_like_a_tfjob_is_copied_as_it_is(manifest):
    assert with_restricted_defaults(manifest) == manifest


# -- whatever the user wrote: their values stay, the rest is filled in --------------------------------
POD_KEYS = ["runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile"]
CONTAINER_KEYS = ["allowPrivilegeEscalation", "privileged", "capabilities", "runAsUser", "runAsNonRoot"]
values = {
    "runAsNonRoot": st.booleans(),
    "runAsUser": st.integers(0, 3),
    "runAsGroup": st.integers(0, 3),
    "fsGroup": st.integers(0, 3),
    "allowPrivilegeEscalation": st.booleans(),
    "privileged": st.booleans(),
    "seccompProfile": st.sampled_from([{"type": "RuntimeDefault"}, {"type": "Unconfined"}]),
    "capabilities": st.fixed_dictionaries(
        {},
        optional={
            "add": st.lists(st.sampled_from(["NET_BIND_SERVICE", "SYS_ADMIN", "CAP_SYS_ADMIN"]), max_size=2),
            "drop": st.lists(st.sampled_from(["ALL", "NET_RAW"]), max_size=2),
        },
    ),
}
pod_contexts = st.fixed_dictionaries({}, optional={k: values[k] for k in POD_KEYS})
container_contexts = st.fixed_dictionaries({}, optional={k: values[k] for k in CONTAINER_KEYS})


@settings(max_examples=150, deadline=None)
@given(pod_context=st.none() | pod_contexts, contexts=st.lists(st.none() | container_contexts, min_size=1, max_size=3))
def test_user_values_survive_and_the_result_is_restricted_where_the_user_did_not_say_otherwise(pod_context, contexts):
    manifest = job({} if pod_context is None else {"securityContext": pod_context})
    spec = pod_of(manifest)
    spec["containers"] = [
        {"name": f"c{i}", "image": "tf", **({} if c is None else {"securityContext": c})}
        for i, c in enumerate(contexts)
    ]
    spec["containers"][0]["name"] = "tensorflow"
    before = copy.deepcopy(manifest)
    out = with_restricted_defaults(manifest)
    assert manifest == before
    crd_validator().validate(out)
    out_pod = pod_of(out)
    for key, value in (pod_context or {}).items():
        assert out_pod["securityContext"][key] == value
    for given_context, container in zip(contexts, out_pod["containers"], strict=True):
        for key, value in (given_context or {}).items():
            if key == "capabilities":
                assert {k: v for k, v in container["securityContext"][key].items() if k in value} == value
            else:
                assert container["securityContext"][key] == value
    # The defaults never mask a breach: the result is `restricted` exactly when the user wrote nothing
    # that `restricted` forbids.
    assert bool(restricted_problems(out_pod)) == user_forbids(pod_context or {}, [c or {} for c in contexts])


def user_forbids(pod_context: dict, contexts: list[dict]) -> bool:
    """Whether the user's own values break `restricted` (whatever is filled in around them)."""
    if pod_context.get("runAsUser") == 0 or pod_context.get("seccompProfile", {}).get("type") == "Unconfined":
        return True
    for c in contexts:
        capabilities = c.get("capabilities", {})
        if (
            c.get("privileged")
            or c.get("allowPrivilegeEscalation") is True
            or c.get("runAsUser") == 0
            or set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}
            or ("drop" in capabilities and "ALL" not in capabilities["drop"])
            or c.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is False
        ):
            return True
    return False


# -- the identity is the notebooks' -------------------------------------------------------------------
def test_the_default_identity_is_the_model_servers():
    """The same uid and gid as the hub's model server (tests/hub check the notebooks' too)."""
    server = next(
        d
        for d in yaml.safe_load_all((REPO / "jupyterhub_config" / "k8s" / "model-server.yaml").read_text())
        if d and d["kind"] == "Deployment"
    )
    context = server["spec"]["template"]["spec"]["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == (POD_DEFAULTS["runAsUser"], POD_DEFAULTS["runAsGroup"])
