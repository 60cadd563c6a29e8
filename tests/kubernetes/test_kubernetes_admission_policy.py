"""The hub manifests' TFJob admission policy on the fake API server: the same refusals, the same
Status as kube-apiserver's ValidatingAdmissionPolicy plugin, and the notebook user's one-line error."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from kubeflow_jupyter.backends.kubernetes import KubernetesBackend
from kubeflow_jupyter.backends.kubernetes.errors import PolicyDenied
from kubeflow_jupyter.client import TFJobClient
from kubeflow_jupyter.errors import SpecError
from kubeflow_jupyter.testing.fake_kube import FakeKubeCluster

pytest.importorskip("celpy", reason="the fake API server evaluates policies with cel-python (the `test` extra)")

REPO = Path(__file__).resolve().parents[2]
POLICY_FILE = REPO / "jupyterhub_config" / "k8s" / "tfjob-policy.yaml"
USERS = "kubeflow-user"
POLICY, BINDING = "tfjob-pod-security", "tfjob-pod-security-kubeflow-user"
SA_MESSAGE = (
    "serviceAccountName: TFJob replicas may run only as the ServiceAccount tfjob-runner (or the namespace's "
    "token-less default): set serviceAccountName: tfjob-runner in every replica template, or leave it out"
)
HOST_MESSAGE = (
    "hostNetwork/hostPID/hostIPC/hostPort: TFJob replicas may not use the node's network, process or IPC "
    "namespaces or its ports: remove hostNetwork, hostPID, hostIPC and every hostPort from the replica "
    "templates (replicas find each other through TF_CONFIG)"
)
ESCALATION_MESSAGE = (
    "securityContext.allowPrivilegeEscalation: TFJob containers may not gain privileges (Pod "
    "Security restricted): set allowPrivilegeEscalation: false in the securityContext of every "
    "container and initContainer"
)


def policy_objects() -> list[dict]:
    """The policy and binding exactly as `kubectl apply -k jupyterhub_config/k8s` sends them
    (tests/hub check that kustomize adds nothing but a label)."""
    return [d for d in yaml.safe_load_all(POLICY_FILE.read_text()) if d]


@pytest.fixture(scope="module")
def cluster():
    with FakeKubeCluster(namespace=USERS, step=0.005, run_seconds=0.03, admission_policies=policy_objects()) as c:
        yield c


@pytest.fixture
def kubeconfig(cluster, tmp_path):
    # The notebook's identity on the hub's cluster.
    return cluster.write_kubeconfig(tmp_path / "kubeconfig", user=f"system:serviceaccount:{USERS}:jupyter-notebook")


def tfjob(name: str, *, service_account: str | None = None, restricted: bool = True, **pod) -> dict:
    container = {"name": "tensorflow", "image": "python:3.11-slim", "command": ["python", "-c", "print('done')"]}
    spec: dict = {"containers": [container], **pod}
    if restricted:
        container["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
        spec["securityContext"] = {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    if service_account:
        spec["serviceAccountName"] = service_account
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name},
        "spec": {"tfReplicaSpecs": {"Worker": {"replicas": 1, "restartPolicy": "Never", "template": {"spec": spec}}}},
    }


def submit(kubeconfig, manifest: dict, **options):
    client = TFJobClient(KubernetesBackend(kubeconfig=str(kubeconfig)))
    return client, client.submit(yaml.safe_dump(manifest), **options)


def raw_api(kubeconfig):
    from kubernetes import client, config

    return client.CustomObjectsApi(config.new_client_from_config(str(kubeconfig)))


def test_a_refused_tfjob_reads_as_one_line_naming_policy_rule_and_fix(cluster, kubeconfig):
    with pytest.raises(PolicyDenied) as err:
        submit(kubeconfig, tfjob("as-the-hub", service_account="tf-hub"))
    assert str(err.value) == (
        f"the cluster's admission policy '{POLICY}' refused TFJob 'as-the-hub' in namespace '{USERS}': {SA_MESSAGE}"
    )
    assert "\n" not in str(err.value)
    assert isinstance(err.value, SpecError)  # the spec must change; nothing was created
    assert (err.value.policy, err.value.binding) == (POLICY, BINDING)
    assert cluster.tfjob("as-the-hub") is None


def test_the_denial_is_kube_apiservers_status(cluster, kubeconfig):
    """422 Invalid, `<resource>.<group> "<name>" is forbidden: ValidatingAdmissionPolicy '<p>' with binding '<b>'
    denied request: <message>`, one cause with the policy message (dispatcher.go + admission.NewForbidden)."""
    from kubernetes.client.exceptions import ApiException

    api = raw_api(kubeconfig)
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object("kubeflow.org", "v1", USERS, "tfjobs", tfjob("raw", hostNetwork=True))
    assert err.value.status == 422
    denial = f"ValidatingAdmissionPolicy '{POLICY}' with binding '{BINDING}' denied request: {HOST_MESSAGE}"
    assert json.loads(err.value.body) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'tfjobs.kubeflow.org "raw" is forbidden: {denial}',
        "reason": "Invalid",
        "details": {"name": "raw", "group": "kubeflow.org", "kind": "tfjobs", "causes": [{"message": denial}]},
        "code": 422,
    }


def test_a_dry_run_is_refused_too(cluster, kubeconfig):
    """The finding: the escaping TFJob passed `--dry-run`. Admission runs on dry runs."""
    escape = tfjob(
        "escape",
        service_account="tf-hub",
        volumes=[{"name": "hub-db", "persistentVolumeClaim": {"claimName": "hub-db-tf-hub-0"}}],
    )
    container = escape["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    container["securityContext"]["privileged"] = True
    with pytest.raises(PolicyDenied, match="serviceAccountName: TFJob replicas may run only as"):
        submit(kubeconfig, escape, dry_run=True)


def test_a_job_without_security_context_is_told_what_pod_security_needs(cluster, kubeconfig):
    """Sent by another client (no restricted defaults: test_kubernetes_restricted_defaults.py has this
    client's), the job is refused with the rule to add; through this client, a field the user set
    that breaks it is refused with the same one line."""
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as raw:
        raw_api(kubeconfig).create_namespaced_custom_object(
            "kubeflow.org", "v1", USERS, "tfjobs", tfjob("seed-as-is", restricted=False)
        )
    assert raw.value.status == 422 and ESCALATION_MESSAGE in json.loads(raw.value.body)["message"]
    escalating = tfjob("escalating", restricted=False)
    container = escalating["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {"allowPrivilegeEscalation": True}
    with pytest.raises(PolicyDenied) as err:
        submit(kubeconfig, escalating)
    assert str(err.value).endswith(f": {ESCALATION_MESSAGE}")


def test_a_compliant_tfjob_is_created_and_runs(cluster, kubeconfig):
    client, submission = submit(kubeconfig, tfjob("compliant", service_account="tfjob-runner"))
    assert submission.snapshot is not None
    # The operator's status writes (tfjobs/status) are not matched by the policy: the job finishes.
    assert client.wait("compliant", timeout=60).state == "Succeeded"
    _, dry = submit(kubeconfig, tfjob("compliant-dry"), dry_run=True)  # no serviceAccountName: the token-less default
    assert dry.dry_run and cluster.tfjob("compliant-dry") is None


def test_an_update_that_breaks_a_rule_is_refused_and_changes_nothing(cluster, kubeconfig):
    from kubernetes.client.exceptions import ApiException

    cluster.pause_operator()
    try:
        submit(kubeconfig, tfjob("to-update"))
        api = raw_api(kubeconfig)
        stored = api.get_namespaced_custom_object("kubeflow.org", "v1", USERS, "tfjobs", "to-update")
        changed = copy.deepcopy(stored)
        changed["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["hostPID"] = True
        with pytest.raises(ApiException) as err:
            api.replace_namespaced_custom_object("kubeflow.org", "v1", USERS, "tfjobs", "to-update", changed)
        assert err.value.status == 422 and HOST_MESSAGE in json.loads(err.value.body)["message"]
        with pytest.raises(ApiException) as err:  # a merge patch is an UPDATE to admission
            api.patch_namespaced_custom_object(
                "kubeflow.org",
                "v1",
                USERS,
                "tfjobs",
                "to-update",
                {"spec": {"tfReplicaSpecs": {"Worker": {"template": {"spec": {"serviceAccountName": "tf-hub"}}}}}},
            )
        assert err.value.status == 422 and SA_MESSAGE in json.loads(err.value.body)["message"]
        after = api.get_namespaced_custom_object("kubeflow.org", "v1", USERS, "tfjobs", "to-update")
        assert after["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    finally:
        cluster.pause_operator(False)


def test_the_binding_covers_the_users_namespace_only(cluster, tmp_path):
    other = cluster.write_kubeconfig(tmp_path / "team-a", namespace="team-a")
    _, submission = submit(other, tfjob("elsewhere", service_account="tf-hub"), dry_run=True)
    assert submission.dry_run


def test_a_validation_with_reason_forbidden_answers_403_and_reads_the_same(tmp_path):
    """A policy may choose the reason; the code follows it (Forbidden → 403) and the notebook user
    still reads the policy's message, not an RBAC hint."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "two-workers-at-most"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["kubeflow.org"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["tfjobs"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "object.spec.tfReplicaSpecs.all(k, k != 'Worker' || "
                    "object.spec.tfReplicaSpecs[k].replicas <= 2)",
                    "message": "replicas: at most 2 workers here: ask for fewer",
                    "reason": "Forbidden",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "small-teams"},
        "spec": {
            "policyName": "two-workers-at-most",
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"size": "small"}}},
        },
    }
    with FakeKubeCluster(namespace="team-b", admission_policies=[policy, binding]) as small:
        small.label_namespace("team-b", {"size": "small"})
        kubeconfig = small.write_kubeconfig(tmp_path / "kc")
        job = tfjob("big")
        job["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] = 3
        from kubernetes.client.exceptions import ApiException

        with pytest.raises(ApiException) as raw:
            raw_api(kubeconfig).create_namespaced_custom_object("kubeflow.org", "v1", "team-b", "tfjobs", job)
        assert raw.value.status == 403 and json.loads(raw.value.body)["reason"] == "Forbidden"
        with pytest.raises(PolicyDenied) as err:
            submit(kubeconfig, job)
        assert str(err.value) == (
            "the cluster's admission policy 'two-workers-at-most' refused TFJob 'big' in "
            "namespace 'team-b': replicas: at most 2 workers here: ask for fewer"
        )
        job["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] = 2
        submit(kubeconfig, job, dry_run=True)
