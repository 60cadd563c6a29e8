"""The Kubernetes backend sends replica templates with a Pod Security `restricted` securityContext
where the user set none (kubeflow_jupyter/tfjob/security.py): the seed's examples pass the hub's
TFJob admission policy as they are, and a field the user set that breaks it is still refused."""

from __future__ import annotations

import pytest
import yaml
from support.paths import REPO
from support.restricted import CONTAINER_DEFAULTS, POD_DEFAULTS

from kubeflow_jupyter.backends.kubernetes import KubernetesBackend
from kubeflow_jupyter.backends.kubernetes.errors import PolicyDenied
from kubeflow_jupyter.client import TFJobClient
from kubeflow_jupyter.testing.fake_kube import FakeKubeCluster

pytest.importorskip("celpy", reason="the fake API server evaluates policies with cel-python (the `test` extra)")

EXAMPLES = REPO / "examples"
POLICY_FILE = REPO / "jupyterhub_config" / "k8s" / "tfjob-policy.yaml"
USERS = "kubeflow-user"
POLICY = "tfjob-pod-security"
SEED_COMMAND = "python examples/tf_sample/tf_sample.py"  # README: the seed's job needs --command
PRIVILEGED_MESSAGE = (
    "securityContext.privileged: TFJob containers may not run privileged: remove privileged: true "
    "from every container and initContainer"
)


@pytest.fixture(scope="module")
def cluster():
    policies = [d for d in yaml.safe_load_all(POLICY_FILE.read_text()) if d]  # as `kubectl apply -k` sends them
    with FakeKubeCluster(namespace=USERS, step=0.005, run_seconds=0.03, admission_policies=policies) as c:
        yield c


@pytest.fixture
def client(cluster, tmp_path) -> TFJobClient:
    # The notebook's identity on the hub's cluster.
    kubeconfig = cluster.write_kubeconfig(
        tmp_path / "kubeconfig", user=f"system:serviceaccount:{USERS}:jupyter-notebook"
    )
    return TFJobClient(KubernetesBackend(kubeconfig=str(kubeconfig)))


def sent_body(cluster, name: str) -> dict:
    """The TFJob the client sent in its (last) create request for ``name``."""
    bodies = [
        r.body
        for r in cluster.requests
        if r.verb == "create" and "/tfjobs" in r.path and ((r.body or {}).get("metadata") or {}).get("name") == name
    ]
    assert bodies, f"no create request for {name}"
    return bodies[-1]


def templates(manifest: dict) -> dict[str, dict]:
    return {t: r["template"]["spec"] for t, r in manifest["spec"]["tfReplicaSpecs"].items()}


def assert_restricted_defaults(manifest: dict) -> None:
    for replica, pod in templates(manifest).items():
        assert pod["securityContext"] == POD_DEFAULTS, replica
        for container in (pod.get("initContainers") or []) + pod["containers"]:
            assert container["securityContext"] == CONTAINER_DEFAULTS, (replica, container["name"])


def test_the_seed_example_is_created_and_runs_under_the_policy(cluster, client):
    sub = client.submit(EXAMPLES / "tf_sample.yaml", name="seed-sample", command=SEED_COMMAND)
    assert sub.snapshot is not None and sub.snapshot.backend == "kubernetes"
    assert_restricted_defaults(sent_body(cluster, "seed-sample"))
    stored = cluster.tfjob("seed-sample")
    assert_restricted_defaults(stored)  # kept by the API server: nothing pruned
    assert {t: p["containers"][0]["command"] for t, p in templates(stored).items()} == {
        t: ["python", "examples/tf_sample/tf_sample.py"] for t in ("Master", "Worker", "PS")
    }
    assert client.wait("seed-sample", timeout=60).state == "Succeeded"
    client.delete("seed-sample")


@pytest.mark.parametrize(
    "example, command",
    [
        ("tfjob-legacy.yaml", SEED_COMMAND),  # v1alpha1: its PS template is the converter's
        ("tf_sample.yaml", SEED_COMMAND),
        ("digits/tfjob.yaml", None),
    ],
)
def test_every_example_passes_a_dry_run(cluster, client, example, command):
    name = "dry-" + example.split("/")[0].split(".")[0].replace("_", "-")
    sub = client.submit(EXAMPLES / example, name=name, command=command, dry_run=True)
    assert sub.dry_run and sub.snapshot is None
    assert cluster.tfjob(name) is None
    sent = sent_body(cluster, name)
    assert_restricted_defaults(sent)
    assert set(templates(sent)) == set(sub.manifest["spec"]["tfReplicaSpecs"])


def test_what_the_user_set_is_sent_as_set(cluster, client):
    job = yaml.safe_load((EXAMPLES / "tf_sample.yaml").read_text())
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    worker["securityContext"] = {
        "runAsUser": 2000,
        "seccompProfile": {"type": "Localhost", "localhostProfile": "tf.json"},
    }
    worker["containers"][0]["securityContext"] = {
        "readOnlyRootFilesystem": True,
        "capabilities": {"add": ["NET_BIND_SERVICE"]},
    }
    client.submit(yaml.safe_dump(job), name="users-own", dry_run=True)
    sent = templates(sent_body(cluster, "users-own"))
    assert sent["Worker"]["securityContext"] == {
        "runAsUser": 2000,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "Localhost", "localhostProfile": "tf.json"},
    }
    assert sent["Worker"]["containers"][0]["securityContext"] == {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
    }
    assert sent["Master"]["securityContext"] == POD_DEFAULTS  # the other templates get the defaults


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("where", ["containers", "initContainers"])
def test_an_explicit_privileged_container_is_still_refused_in_one_line(cluster, client, dry_run, where):
    job = yaml.safe_load((EXAMPLES / "tf_sample.yaml").read_text())
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    if where == "containers":
        worker["containers"][0]["securityContext"] = {"privileged": True}
    else:
        worker["initContainers"] = [{"name": "setup", "image": "busybox:1.36", "securityContext": {"privileged": True}}]
    name = f"privileged-{where.lower()}-{int(dry_run)}"
    with pytest.raises(PolicyDenied) as err:
        client.submit(yaml.safe_dump(job), name=name, command=SEED_COMMAND, dry_run=dry_run)
    assert str(err.value) == (
        f"the cluster's admission policy '{POLICY}' refused TFJob '{name}' in namespace '{USERS}': {PRIVILEGED_MESSAGE}"
    )
    assert "\n" not in str(err.value)
    assert cluster.tfjob(name) is None
    sent = templates(sent_body(cluster, name))["Worker"]
    (container,) = [c for c in sent.get(where) or [] if c["securityContext"].get("privileged")]
    assert container["securityContext"]["privileged"] is True  # sent as the user wrote it
