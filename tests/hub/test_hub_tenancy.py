"""jupyterhub_config/k8s fences users off from the hub: two namespaces, Pod Security, namespaced RBAC,
token-less TFJob pods, and NetworkPolicies that allow exactly what docs/hub.md says."""

from __future__ import annotations

import json
import os
import re

import pytest
from hub_support import (
    DUMMY_KUBECONFIG,
    HAVE_KUBECTL,
    K8S_DIR,
    REPO,
    build_pod,
    load_config,
    one,
    render,
    rendered_manifests,
)
from pod_security import baseline_problems, restricted_problems

pytestmark = pytest.mark.skipif(not HAVE_KUBECTL, reason="kubectl is not installed (needed for `kubectl kustomize`)")

HUB_NS, USER_NS = "kubeflow", "kubeflow-user"
PLACEHOLDER_CIDR = "192.0.2.1/32"
API_PORTS = [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]
DNS_PORTS = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
HUB_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": HUB_NS}},
    "podSelector": {"matchLabels": {"app": "jupyterhub", "component": "hub"}},
}
NOTEBOOK_LABELS = {"component": "singleuser-server"}
NOTEBOOK_SELECTOR = {
    "matchLabels": NOTEBOOK_LABELS,  # and not a TFJob pod that copied the label
    "matchExpressions": [{"key": "training.kubeflow.org/job-name", "operator": "DoesNotExist"}],
}
TFJOB_PEER = {"podSelector": {"matchExpressions": [{"key": "training.kubeflow.org/job-name", "operator": "Exists"}]}}
MODEL_SERVER_PEER = {"podSelector": {"matchLabels": {"app": "model-server"}}}


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return rendered_manifests()


def canonical(rule: dict) -> str:
    return json.dumps(rule, sort_keys=True)


def namespaces(rendered) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in rendered if o["kind"] == "Namespace"}


def in_namespace(rendered, namespace: str) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in rendered if o["metadata"].get("namespace") == namespace}


def settings(rendered) -> dict[str, str]:
    return one(rendered, "ConfigMap", "tf-hub-settings")["data"]


@pytest.fixture
def notebook_pod(rendered, tmp_path, monkeypatch) -> dict:
    """The pod KubeSpawner makes from the rendered ConfigMaps, with the hub container's environment."""
    for name, text in one(rendered, "ConfigMap", "jupyterhub-config")["data"].items():
        (tmp_path / name).write_text(text)
    for key, value in settings(rendered).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HUB_SHARED_PASSWORD", "from-the-secret")
    (tmp_path / "kubeconfig").write_text(DUMMY_KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    config = load_config(tmp_path / "jupyterhub_config.py")
    pod, _ = build_pod(config, {})
    pod["metadata"]["namespace"] = config.KubeSpawner.namespace
    return pod


# -- namespaces and Pod Security -----------------------------------------------------------------------
def test_users_namespace_enforces_pod_security_restricted(rendered):
    labels = namespaces(rendered)[USER_NS]["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_hub_namespace_is_another_one_and_enforces_baseline(rendered):
    """The operator may share `kubeflow` with the hub: enforce baseline there, warn and audit restricted."""
    labels = namespaces(rendered)[HUB_NS]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert set(namespaces(rendered)) == {HUB_NS, USER_NS}


def test_hub_and_its_state_live_in_the_hub_namespace(rendered):
    hub = in_namespace(rendered, HUB_NS)
    kinds = {kind for kind, _ in hub}
    assert ("StatefulSet", "tf-hub") in hub and ("ServiceAccount", "tf-hub") in hub
    assert {("Service", "tf-hub-0"), ("Service", "tf-hub-lb")} <= hub
    # The database and cookie secret: the StatefulSet's claim, made in the StatefulSet's namespace.
    statefulset = one(rendered, "StatefulSet", "tf-hub")
    assert [t["metadata"]["name"] for t in statefulset["spec"]["volumeClaimTemplates"]] == ["hub-db"]
    # Nothing users touch is here: no Role, no PVC, no notebook or TFJob identity, no model server.
    assert not kinds & {"Role", "RoleBinding", "PersistentVolumeClaim", "Deployment"}
    assert not {name for _, name in hub} & {"jupyter-notebook", "tfjob-runner", "model-server", "model-store"}


def test_notebooks_tfjobs_and_the_model_server_live_in_the_users_namespace(rendered, notebook_pod):
    users = in_namespace(rendered, USER_NS)
    assert {
        ("ServiceAccount", "jupyter-notebook"),
        ("Role", "jupyter-notebook"),
        ("RoleBinding", "jupyter-notebook"),
        ("ServiceAccount", "tfjob-runner"),
        ("Deployment", "model-server"),
        ("Service", "model-service"),
        ("PersistentVolumeClaim", "model-store"),
    } <= users
    assert settings(rendered)["HUB_NOTEBOOK_NAMESPACE"] == USER_NS
    assert notebook_pod["metadata"]["namespace"] == USER_NS  # KubeSpawner's namespace: pods and home PVCs
    env = {e["name"]: e.get("value") for e in notebook_pod["spec"]["containers"][0]["env"]}
    assert env["KUBEFLOW_JUPYTER_NAMESPACE"] == USER_NS  # where the notebook's TFJobs go
    # Notebooks reach the hub API across namespaces, and the model server in their own.
    assert settings(rendered)["HUB_CONNECT_URL"] == f"http://tf-hub-0.{HUB_NS}.svc:8081"
    assert env["KUBEFLOW_JUPYTER_MODEL_SERVER"] == "model-service:9000"


# -- RBAC ------------------------------------------------------------------------------------------------
def test_hub_rbac_is_a_role_in_the_users_namespace(rendered):
    role, binding = one(rendered, "Role", "tf-hub"), one(rendered, "RoleBinding", "tf-hub")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == USER_NS
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tf-hub"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "tf-hub", "namespace": HUB_NS}]
    assert not [o for o in rendered if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    # No binding anywhere grants anything to the identities of users' pods but the notebook's own.
    subjects = [s for o in rendered if o["kind"] == "RoleBinding" for s in o["subjects"]]
    assert {(s["name"], s["namespace"]) for s in subjects} == {("tf-hub", HUB_NS), ("jupyter-notebook", USER_NS)}


def test_tfjob_pods_and_default_pods_carry_no_token(rendered):
    accounts = {
        o["metadata"]["name"]: o
        for o in rendered
        if o["kind"] == "ServiceAccount" and o["metadata"]["namespace"] == USER_NS
    }
    assert accounts["tfjob-runner"]["automountServiceAccountToken"] is False
    assert accounts["default"]["automountServiceAccountToken"] is False
    # The notebook account: its token is mounted per pod, by KubeSpawner, only with that account.
    assert "automountServiceAccountToken" not in accounts["jupyter-notebook"]
    model_server = one(rendered, "Deployment", "model-server")["spec"]["template"]["spec"]
    assert model_server["automountServiceAccountToken"] is False and "serviceAccountName" not in model_server


def test_notebook_pods_mount_a_token_only_for_the_notebook_account(notebook_pod):
    assert notebook_pod["spec"]["serviceAccountName"] == "jupyter-notebook"
    assert notebook_pod["spec"]["automountServiceAccountToken"] is True


# -- what Pod Security admits --------------------------------------------------------------------------
def test_every_pod_in_the_users_namespace_meets_restricted(rendered, notebook_pod):
    assert restricted_problems(notebook_pod["spec"]) == []
    for workload in (o for o in rendered if o["kind"] in ("Deployment", "StatefulSet")):
        spec = workload["spec"]["template"]["spec"]
        if workload["metadata"]["namespace"] == USER_NS:
            assert restricted_problems(spec) == [], workload["metadata"]["name"]
        else:  # the hub: the namespace enforces baseline, and the hub meets restricted anyway
            assert baseline_problems(spec) == restricted_problems(spec) == [], workload["metadata"]["name"]


# -- network -------------------------------------------------------------------------------------------
def policies(rendered, namespace: str | None = None) -> dict[str, dict]:
    return {
        o["metadata"]["name"]: o
        for o in rendered
        if o["kind"] == "NetworkPolicy" and namespace in (None, o["metadata"]["namespace"])
    }


def _selects(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        present = expr["key"] in labels
        if (expr["operator"] == "Exists") != present or expr["operator"] not in ("Exists", "DoesNotExist"):
            return False
    return True


def rules_for(rendered, namespace: str, labels: dict, direction: str) -> list[dict]:
    """Every ingress/egress rule that applies to a pod with ``labels`` in ``namespace`` (policies add up)."""
    out = []
    for policy in policies(rendered, namespace).values():
        spec = policy["spec"]
        if direction.capitalize() in spec["policyTypes"] and _selects(spec["podSelector"], labels):
            out += spec.get(direction) or []
    return out


def api_cidrs(rendered) -> set[str]:
    return {
        peer["ipBlock"]["cidr"]
        for p in rendered
        if p["kind"] == "NetworkPolicy"
        and (p["metadata"].get("labels") or {}).get("kubeflow-jupyter/egress") == "kube-apiserver"
        for rule in p["spec"]["egress"]
        for peer in rule["to"]
    }


def test_users_namespace_denies_by_default(rendered):
    deny = policies(rendered, USER_NS)["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert "default-deny" not in policies(rendered, HUB_NS)  # the operator may live there: not ours to cut off


def test_notebooks_reach_exactly_the_documented_destinations(rendered, notebook_pod):
    labels = notebook_pod["metadata"]["labels"]
    egress = rules_for(rendered, USER_NS, labels, "egress")
    (cidr,) = api_cidrs(rendered)
    assert sorted(map(canonical, egress)) == sorted(
        map(
            canonical,
            [
                {"to": [HUB_PEER], "ports": [{"port": 8081, "protocol": "TCP"}]},
                {
                    "to": [MODEL_SERVER_PEER],
                    "ports": [{"port": 9000, "protocol": "TCP"}, {"port": 8501, "protocol": "TCP"}],
                },
                {"to": [TFJOB_PEER]},
                {"to": [DNS_PEER], "ports": DNS_PORTS},
                {"to": [{"ipBlock": {"cidr": cidr}}], "ports": API_PORTS},
            ],
        )
    )
    ingress = rules_for(rendered, USER_NS, labels, "ingress")
    assert ingress == [{"from": [HUB_PEER], "ports": [{"port": 8888, "protocol": "TCP"}]}]


def test_tfjob_pods_reach_each_other_and_dns_only(rendered):
    labels = {"training.kubeflow.org/job-name": "mnist", "training.kubeflow.org/replica-type": "worker"}
    egress = rules_for(rendered, USER_NS, labels, "egress")
    assert egress == [{"to": [TFJOB_PEER]}, {"to": [DNS_PEER], "ports": DNS_PORTS}]
    ingress = rules_for(rendered, USER_NS, labels, "ingress")
    assert ingress == [{"from": [TFJOB_PEER, {"podSelector": NOTEBOOK_SELECTOR}]}]
    # A replica labelled model-client=true may call the model server too, nothing else.
    extra = rules_for(rendered, USER_NS, {**labels, "model-client": "true"}, "egress")
    assert [r for r in extra if r not in egress] == [
        {"to": [MODEL_SERVER_PEER], "ports": [{"port": 9000, "protocol": "TCP"}, {"port": 8501, "protocol": "TCP"}]}
    ]


def test_a_tfjob_pod_wearing_the_notebook_label_gets_only_the_tfjob_rules(rendered):
    """Users write the templates' labels; the operator's job-name label they cannot drop."""
    tfjob = {"training.kubeflow.org/job-name": "mnist"}
    for direction in ("egress", "ingress"):
        assert rules_for(rendered, USER_NS, {**tfjob, **NOTEBOOK_LABELS}, direction) == rules_for(
            rendered, USER_NS, tfjob, direction
        )
    hub_ingress = rules_for(rendered, HUB_NS, {"app": "jupyterhub", "component": "hub"}, "ingress")
    (api,) = [r for r in hub_ingress if r["ports"] == [{"port": 8081, "protocol": "TCP"}]]
    assert api["from"][0]["podSelector"] == NOTEBOOK_SELECTOR


def test_nothing_in_the_users_namespace_reaches_the_internet(rendered):
    (cidr,) = api_cidrs(rendered)
    for name, policy in policies(rendered, USER_NS).items():
        for rule in policy["spec"].get("egress") or []:
            assert rule.get("to"), f"{name}: an egress rule without `to` allows every address"
            for peer in rule["to"]:
                assert "ipBlock" not in peer or peer["ipBlock"] == {"cidr": cidr}, name
                assert peer.get("namespaceSelector") != {}, f"{name}: every namespace"


def test_hub_egress_is_notebooks_dns_the_api_server_and_https_for_the_identity_provider(rendered):
    labels = one(rendered, "StatefulSet", "tf-hub")["spec"]["template"]["metadata"]["labels"]
    egress = rules_for(rendered, HUB_NS, labels, "egress")
    (cidr,) = api_cidrs(rendered)
    notebooks = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": USER_NS}},
        "podSelector": NOTEBOOK_SELECTOR,
    }
    assert sorted(map(canonical, egress)) == sorted(
        map(
            canonical,
            [
                {"to": [notebooks], "ports": [{"port": 8888, "protocol": "TCP"}]},
                {"to": [DNS_PEER], "ports": DNS_PORTS},
                {"to": [{"ipBlock": {"cidr": cidr}}], "ports": API_PORTS},
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]},
            ],
        )
    )
    # The last one is its own policy, so that an overlay can delete it.
    idp = policies(rendered, HUB_NS)["tf-hub-to-identity-provider"]["spec"]
    assert idp["egress"] == [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]}]


def test_api_server_cidr_is_one_documented_value_not_the_internet(rendered):
    assert api_cidrs(rendered) == {PLACEHOLDER_CIDR}
    kustomization = (K8S_DIR / "kustomization.yaml").read_text()
    assert re.search(r"value: 192\.0\.2\.1/32", kustomization)
    assert "API server CIDR" in kustomization
    guide = (REPO / "docs" / "hub.md").read_text()
    assert PLACEHOLDER_CIDR in guide and "kubeflow-jupyter/egress=kube-apiserver" in guide


def test_an_overlay_sets_the_api_server_cidr_for_hub_and_notebooks(tmp_path):
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(f"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - {os.path.relpath(K8S_DIR, overlay)}
patches:
  - target:
      kind: NetworkPolicy
      labelSelector: kubeflow-jupyter/egress=kube-apiserver
    patch: |-
      - op: replace
        path: /spec/egress/0/to/0/ipBlock/cidr
        value: 10.20.30.40/32
""")
    objects = render(overlay)
    assert api_cidrs(objects) == {"10.20.30.40/32"}
    hub_rules = rules_for(objects, HUB_NS, {"app": "jupyterhub", "component": "hub"}, "egress")
    notebook_rules = rules_for(objects, USER_NS, NOTEBOOK_LABELS, "egress")
    for rules in (hub_rules, notebook_rules):
        assert {"to": [{"ipBlock": {"cidr": "10.20.30.40/32"}}], "ports": API_PORTS} in rules


def test_docs_say_what_notebooks_may_reach(rendered):
    guide = (REPO / "docs" / "hub.md").read_text()
    assert "Notebooks get no internet by default" not in guide
    for fragment in (
        "kubeflow-user",
        "pod-security.kubernetes.io/enforce: restricted",
        "tfjob-pod-security",
        "tfjob-runner",
        "default-deny",
    ):
        assert fragment in guide, fragment
