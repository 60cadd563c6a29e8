"""jupyterhub_config/k8s: what `kubectl kustomize` renders is valid, least-privilege and locked down."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml
from crd_check import CRD_PATH
from hub_support import DUMMY_KUBECONFIG, HAVE_KUBECTL, K8S_DIR, build_pod, load_config, one, rendered_manifests

K8S_VERSION = "1.37.0"
TFJOB_CRD = CRD_PATH  # the real training-operator 1.9 CRD, kept in tests/data
HUB_NS, USER_NS = "kubeflow", "kubeflow-user"

pytestmark = pytest.mark.skipif(not HAVE_KUBECTL, reason="kubectl is not installed (needed for `kubectl kustomize`)")


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return rendered_manifests()


def test_hub_manifests_render_to_the_seed_components(rendered):
    kinds = sorted(
        (o["kind"], o["metadata"]["name"].rsplit("-", 1)[0] if o["kind"] == "ConfigMap" else o["metadata"]["name"])
        for o in rendered
    )
    assert kinds == sorted(
        [
            ("Namespace", HUB_NS),
            ("Namespace", USER_NS),
            ("ServiceAccount", "tf-hub"),
            ("ServiceAccount", "jupyter-notebook"),
            ("ServiceAccount", "tfjob-runner"),
            ("ServiceAccount", "default"),
            ("Role", "tf-hub"),
            ("Role", "jupyter-notebook"),
            ("RoleBinding", "tf-hub"),
            ("RoleBinding", "jupyter-notebook"),
            ("ConfigMap", "jupyterhub-config"),
            ("ConfigMap", "tf-hub-settings"),
            ("Service", "tf-hub-0"),
            ("Service", "tf-hub-lb"),
            ("Service", "model-service"),
            ("StatefulSet", "tf-hub"),
            ("Deployment", "model-server"),
            ("PersistentVolumeClaim", "model-store"),
            ("ValidatingAdmissionPolicy", "tfjob-pod-security"),
            ("ValidatingAdmissionPolicyBinding", "tfjob-pod-security-kubeflow-user"),
            ("NetworkPolicy", "tf-hub"),
            ("NetworkPolicy", "tf-hub-to-apiserver"),
            ("NetworkPolicy", "tf-hub-to-identity-provider"),
            ("NetworkPolicy", "default-deny"),
            ("NetworkPolicy", "jupyter-notebook"),
            ("NetworkPolicy", "jupyter-notebook-to-apiserver"),
            ("NetworkPolicy", "tfjob-replicas"),
            ("NetworkPolicy", "model-server"),
            ("NetworkPolicy", "model-clients"),
        ]
    )
    cluster_scoped = {"Namespace", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    assert all(o["metadata"].get("namespace") in (HUB_NS, USER_NS) for o in rendered if o["kind"] not in cluster_scoped)
    assert not [o for o in rendered if o["kind"] in cluster_scoped and "namespace" in o["metadata"]]


def test_hub_every_rendered_object_validates_against_kubernetes_schemas(rendered):
    for obj in rendered:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_hub_notebook_role_is_exactly_what_the_notebook_needs(rendered):
    role = one(rendered, "Role", "jupyter-notebook")
    assert role["rules"] == [
        {"apiGroups": ["kubeflow.org"], "resources": ["tfjobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
        {"apiGroups": ["kubeflow.org"], "resources": ["tfjobs/status"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
        # %%tfjob run's payload: exactly what the Kubernetes backend does with it, no list/watch/update
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "delete"]},
    ]
    binding = one(rendered, "RoleBinding", "jupyter-notebook")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "jupyter-notebook"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "jupyter-notebook", "namespace": USER_NS}]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == USER_NS


def test_hub_notebook_role_names_the_real_tfjob_resource(rendered):
    """The Role's group and resources are the ones the training-operator CRD defines, status subresource included."""
    crd = yaml.safe_load(TFJOB_CRD.read_text())
    served = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    assert served and "status" in served[0].get("subresources", {})
    role = one(rendered, "Role", "jupyter-notebook")
    tfjob_rules = [r for r in role["rules"] if r["apiGroups"] == [crd["spec"]["group"]]]
    plural = crd["spec"]["names"]["plural"]
    assert {res for r in tfjob_rules for res in r["resources"]} == {plural, f"{plural}/status"}


def test_hub_rbac_has_no_wildcards_and_no_cluster_scope(rendered):
    assert not [o for o in rendered if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    for role in (o for o in rendered if o["kind"] == "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"{role['metadata']['name']}: {rule}"
    hub_role = one(rendered, "Role", "tf-hub")
    granted = {(res, verb) for r in hub_role["rules"] for res in r["resources"] for verb in r["verbs"]}
    # What KubeSpawner calls (create/delete pods and PVCs, read PVCs, list+watch pods and events).
    assert granted == {
        *[("pods", v) for v in ("get", "list", "watch", "create", "delete")],
        *[("persistentvolumeclaims", v) for v in ("get", "create", "delete")],
        *[("events", v) for v in ("get", "list", "watch")],
    }
    assert "secrets" not in {res for res, _ in granted}


def pod_specs(rendered: list[dict]) -> dict[str, dict]:
    return {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]
        for o in rendered
        if o["kind"] in ("StatefulSet", "Deployment")
    }


def test_hub_every_container_is_locked_down(rendered):
    for workload, spec in pod_specs(rendered).items():
        pod_context = spec.get("securityContext", {})
        assert pod_context.get("runAsNonRoot") is True, workload
        assert pod_context.get("seccompProfile") == {"type": "RuntimeDefault"}, workload
        for ctr in spec.get("initContainers", []) + spec["containers"]:
            context = ctr["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (workload, ctr["name"])
            assert context["capabilities"] == {"drop": ["ALL"]}, (workload, ctr["name"])
            assert "privileged" not in context
            assert ":latest" not in ctr["image"] and ":" in ctr["image"], ctr["image"]


def test_hub_services_and_model_server_match_the_seed(rendered):
    headless = one(rendered, "Service", "tf-hub-0")
    assert headless["spec"]["clusterIP"] == "None"
    assert {p["port"] for p in headless["spec"]["ports"]} == {8000, 8081}
    lb = one(rendered, "Service", "tf-hub-lb")
    assert lb["spec"]["type"] == "LoadBalancer" and lb["spec"]["ports"][0]["port"] == 80
    hub = one(rendered, "StatefulSet", "tf-hub")
    assert hub["spec"]["serviceName"] == "tf-hub-0"

    server = one(rendered, "Deployment", "model-server")
    assert server["spec"]["replicas"] == 3
    (serving,) = server["spec"]["template"]["spec"]["containers"]
    assert serving["image"].startswith("tensorflow/serving:")
    assert {"--port=9000", "--rest_api_port=8501"} <= set(serving["args"])
    service = one(rendered, "Service", "model-service")
    assert {p["port"] for p in service["spec"]["ports"]} == {9000, 8501}
    assert service["spec"]["selector"] == server["spec"]["selector"]["matchLabels"]


def test_hub_network_policies_cover_every_component(rendered):
    policies = {o["metadata"]["name"]: o["spec"] for o in rendered if o["kind"] == "NetworkPolicy"}
    for name, spec in policies.items():
        assert spec["policyTypes"] in (["Ingress", "Egress"], ["Egress"]), name
    hub_labels = one(rendered, "StatefulSet", "tf-hub")["spec"]["template"]["metadata"]["labels"]
    server_labels = one(rendered, "Deployment", "model-server")["spec"]["template"]["metadata"]["labels"]
    assert policies["tf-hub"]["podSelector"]["matchLabels"].items() <= hub_labels.items()
    assert policies["model-server"]["podSelector"]["matchLabels"].items() <= server_labels.items()
    assert policies["model-server"]["egress"] == []
    # Only the hub (in its own namespace) reaches a notebook server, and only on its port.
    (notebook_ingress,) = policies["jupyter-notebook"]["ingress"]
    assert notebook_ingress["ports"] == [{"port": 8888, "protocol": "TCP"}]
    assert notebook_ingress["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": HUB_NS}},
            "podSelector": {"matchLabels": policies["tf-hub"]["podSelector"]["matchLabels"]},
        }
    ]


def test_hub_configmap_is_the_config_and_the_pods_it_makes_match_the_policies(rendered, tmp_path, monkeypatch):
    """The ConfigMap holds jupyterhub_config.py and its helper verbatim and works on its own, with the
    environment the StatefulSet gives the hub; the notebook pods it makes carry the labels the
    NetworkPolicies select and use the ServiceAccount the Role is bound to."""
    configmap = one(rendered, "ConfigMap", "jupyterhub-config")
    hub_dir = K8S_DIR / "hub"
    assert configmap["data"] == {
        "jupyterhub_config.py": (hub_dir / "jupyterhub_config.py").read_text(),
        "hubconf.py": (hub_dir / "hubconf.py").read_text(),
    }
    hub_spec = pod_specs(rendered)["tf-hub"]
    config_volume = next(v for v in hub_spec["volumes"] if v["name"] == "config")
    assert config_volume["configMap"]["name"] == configmap["metadata"]["name"]

    for name, text in configmap["data"].items():
        (tmp_path / name).write_text(text)
    settings = one(rendered, "ConfigMap", "tf-hub-settings")["data"]
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HUB_SHARED_PASSWORD", "from-the-secret")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(DUMMY_KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # kubernetes_asyncio (KubeSpawner's client) reads $KUBECONFIG once, when first imported: an
    # earlier test may have imported it under the suite's KUBECONFIG=/dev/null.
    from kubernetes_asyncio.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    config = load_config(tmp_path / "jupyterhub_config.py")

    pod, _ = build_pod(config, {})
    policies = {o["metadata"]["name"]: o["spec"] for o in rendered if o["kind"] == "NetworkPolicy"}
    notebook_selector = policies["jupyter-notebook"]["podSelector"]["matchLabels"]
    assert notebook_selector.items() <= pod["metadata"]["labels"].items()
    notebook_account = one(rendered, "ServiceAccount", "jupyter-notebook")
    assert pod["spec"]["serviceAccountName"] == notebook_account["metadata"]["name"]
    # KubeSpawner spawns where the notebook account, its Role and the hub's Role are.
    assert config.KubeSpawner.namespace == notebook_account["metadata"]["namespace"] == USER_NS
    assert config.KubeSpawner.enable_user_namespaces is False
    assert one(rendered, "Role", "tf-hub")["metadata"]["namespace"] == USER_NS
    # Notebooks reach the hub API in the hub's namespace, through the headless Service.
    assert config.JupyterHub.hub_connect_url == f"http://tf-hub-0.{HUB_NS}.svc:8081"
    assert one(rendered, "Service", "tf-hub-0")["metadata"]["namespace"] == HUB_NS
