"""The ValidatingAdmissionPolicy on TFJobs in kubeflow-user (jupyterhub_config/k8s/tfjob-policy.yaml):
its CEL evaluated with cel-python against TFJobs it must refuse and TFJobs it must let through.

The TFJobs are the ones this project's client sends: the Kubernetes backend fills a `restricted`
securityContext into replica templates where the user set none (kubeflow_jupyter/tfjob/security.py),
so the seed's examples pass as they are, and what a user set that breaks a rule is still refused."""

from __future__ import annotations

import copy

import pytest
import yaml
from hub_support import CLUSTER_CONFIG, HAVE_KUBECTL, K8S_DIR, REPO, load_config, one, rendered_manifests
from pod_security import restricted_problems

from kubeflow_jupyter.testing.fake_kube.admission import Request, ValidatingAdmission
from kubeflow_jupyter.tfjob import parse_tfjob, security
from kubeflow_jupyter.tfjob.security import with_restricted_defaults

pytest.importorskip("celpy", reason="cel-python evaluates the policy's CEL (the `test` extra installs it)")
pytestmark = pytest.mark.skipif(not HAVE_KUBECTL, reason="kubectl is not installed (needed for `kubectl kustomize`)")

USER_NS, HUB_NS = "kubeflow-user", "kubeflow"
POLICY, BINDING = "tfjob-pod-security", "tfjob-pod-security-kubeflow-user"
RUNNER = "tfjob-runner"

# What a container needs for Pod Security `restricted` (docs/hub.md shows it).
CONTAINER_CONTEXT = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}

# The first words of each validation's message: the field it is about.
SA, TOKEN, HOST, HOST_PATH, PRIVILEGED = (
    "serviceAccountName:",
    "automountServiceAccountToken:",
    "hostNetwork/hostPID/hostIPC/hostPort:",
    "volumes.hostPath:",
    "securityContext.privileged:",
)
ESCALATION, CAPABILITIES, NON_ROOT, ROOT_UID, SECCOMP = (
    "securityContext.allowPrivilegeEscalation:",
    "securityContext.capabilities:",
    "securityContext.runAsNonRoot:",
    "securityContext.runAsUser:",
    "securityContext.seccompProfile:",
)


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return rendered_manifests()


@pytest.fixture(scope="module")
def admission(rendered) -> ValidatingAdmission:
    return ValidatingAdmission(rendered)


def submitted(manifest: dict, service_account: str | None = None) -> dict:
    """The user's ``manifest`` (every replica template naming ``service_account``, when given) as the
    Kubernetes backend sends it: with the `restricted` defaults where the user set no securityContext."""
    job = copy.deepcopy(manifest)
    if service_account:
        for replica in job["spec"]["tfReplicaSpecs"].values():
            replica["template"]["spec"]["serviceAccountName"] = service_account
    return with_restricted_defaults(job)


def refusals(
    admission: ValidatingAdmission,
    job: dict,
    *,
    namespace: str = USER_NS,
    operation: str = "CREATE",
    old: dict | None = None,
    subresource: str = "",
) -> list[str]:
    """The message of every validation ``job`` fails (all of them, not only the first the server reports)."""
    request = Request(
        operation=operation,
        group="kubeflow.org",
        version="v1",
        resource="tfjobs",
        subresource=subresource,
        namespace=namespace,
        name=job["metadata"]["name"],
        obj=job,
        old=old,
        user=f"system:serviceaccount:{namespace}:jupyter-notebook",
        namespace_labels={"kubernetes.io/metadata.name": namespace},
    )
    return [d.message for d in admission.denials(request, first_only=False)]


def rules(messages: list[str]) -> set[str]:
    return {m.split(" ", 1)[0] for m in messages}


def seed_jobs() -> dict[str, dict]:
    """Every TFJob the project ships as an example, as the notebook client submits it."""
    jobs = {"tfjob-legacy": parse_tfjob((REPO / "examples" / "tfjob-legacy.yaml").read_text()).job.to_manifest()}
    for path in sorted((REPO / "examples").rglob("*.yaml")):
        if path.name != "tfjob-legacy.yaml":
            jobs[str(path.relative_to(REPO / "examples"))] = parse_tfjob(path.read_text()).job.to_manifest()
    assert {"tfjob-legacy", "tf_sample.yaml"} <= set(jobs)
    return jobs


SEED_JOBS = seed_jobs()


# -- the objects ------------------------------------------------------------------------------------
def test_policy_watches_tfjob_writes_and_fails_closed(rendered):
    policy = one(rendered, "ValidatingAdmissionPolicy", POLICY)
    assert policy["apiVersion"] == "admissionregistration.k8s.io/v1"
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": ["kubeflow.org"],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["tfjobs"],
        }
    ]
    assert "tfReplicaSpecs" in spec["variables"][0]["expression"]
    fields = [v["message"].split(" ", 1)[0] for v in spec["validations"]]
    assert fields == [SA, TOKEN, HOST, HOST_PATH, PRIVILEGED, ESCALATION, CAPABILITIES, NON_ROOT, ROOT_UID, SECCOMP]
    for validation in spec["validations"]:
        message = validation["message"]
        # kube-apiserver refuses a message with a line break; each names the rule and then the fix.
        assert "\n" not in message and message == message.strip()
        rule_and_fix = message.split(": ", 1)[1]
        assert any(fix in rule_and_fix for fix in (": set ", ": remove ", ": use ")), message


def test_policy_is_bound_with_deny_to_the_users_namespace_only(rendered):
    binding = one(rendered, "ValidatingAdmissionPolicyBinding", BINDING)
    spec = binding["spec"]
    assert spec["policyName"] == POLICY
    assert spec["validationActions"] == ["Deny"]
    selector = spec["matchResources"]["namespaceSelector"]["matchLabels"]
    namespaces = {o["metadata"]["name"]: o["metadata"]["labels"] for o in rendered if o["kind"] == "Namespace"}
    users, hub = namespaces[USER_NS], namespaces[HUB_NS]
    assert selector.items() <= users.items()
    assert not selector.items() <= hub.items()


def test_policy_rendered_is_the_file_the_fake_api_server_loads(rendered):
    """tests/kubernetes load tfjob-policy.yaml as it is: kustomize adds only the part-of label."""
    on_disk = [d for d in yaml.safe_load_all((K8S_DIR / "tfjob-policy.yaml").read_text()) if d]
    for doc in on_disk:
        out = copy.deepcopy(one(rendered, doc["kind"], doc["metadata"]["name"]))
        out["metadata"].pop("labels")
        assert out == doc


# -- what must pass -----------------------------------------------------------------------------------
@pytest.mark.parametrize("example", sorted(SEED_JOBS))
@pytest.mark.parametrize("account", [None, RUNNER, "default"])
def test_seed_jobs_as_the_client_submits_them_pass(admission, example, account):
    """The seed's job (its converted parameter servers included) and every example, unchanged by the user."""
    job = submitted(SEED_JOBS[example], account)
    assert refusals(admission, job) == []
    assert refusals(admission, job, operation="UPDATE", old=job) == []
    for replica in job["spec"]["tfReplicaSpecs"].values():  # and Pod Security admits their pods
        assert restricted_problems(replica["template"]["spec"]) == []


def test_a_job_with_a_model_store_volume_and_an_init_container_passes(admission):
    job = copy.deepcopy(SEED_JOBS["tf_sample.yaml"])
    spec = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    spec["volumes"] = [
        {"name": "models", "persistentVolumeClaim": {"claimName": "model-store"}},
        {"name": "scratch", "emptyDir": {}},
    ]
    spec["initContainers"] = [{"name": "fetch", "image": "busybox:1.36"}]
    spec["containers"][0]["securityContext"] = {"capabilities": {"add": ["NET_BIND_SERVICE"]}}
    job = submitted(job, RUNNER)
    assert refusals(admission, job) == []
    assert restricted_problems(job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]) == []


def test_a_job_written_for_restricted_is_sent_as_written(admission):
    """What docs/hub.md shows, written out by the user: nothing is added to it, and it passes."""
    job = copy.deepcopy(SEED_JOBS["tf_sample.yaml"])
    for replica in job["spec"]["tfReplicaSpecs"].values():
        spec = replica["template"]["spec"]
        spec["securityContext"] = {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        spec["containers"][0]["securityContext"] = copy.deepcopy(CONTAINER_CONTEXT)
    assert submitted(job) == job
    assert refusals(admission, job) == []


def test_the_defaults_run_as_the_notebooks_user(monkeypatch):
    """uid 1000, gid 100, fsGroup 100: the notebooks' (KubeSpawner uid, gid, fs_gid), so what a job
    writes on a shared volume belongs to the notebook user."""
    monkeypatch.setenv("HUB_AUTHENTICATOR", "shared-password")  # the config refuses to load without one
    monkeypatch.setenv("HUB_SHARED_PASSWORD", "correct-horse-battery")
    monkeypatch.delenv("HUB_EXTRA_CONFIG", raising=False)
    spawner = load_config(CLUSTER_CONFIG).KubeSpawner
    assert (spawner.uid, spawner.gid, spawner.fs_gid) == (
        security.DEFAULT_UID,
        security.DEFAULT_GID,
        security.DEFAULT_FS_GROUP,
    )
    pod = submitted(SEED_JOBS["tf_sample.yaml"])["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    context = pod["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (
        spawner.uid,
        spawner.gid,
        spawner.fs_gid,
    )


def test_unchanged_seed_jobs_are_refused_for_what_pod_security_would_refuse(admission):
    """Sent as they are (kubectl, another client: no defaults), the pods would never start in
    kubeflow-user: say so at submit."""
    for example, job in SEED_JOBS.items():
        assert rules(refusals(admission, job)) == {ESCALATION, CAPABILITIES, NON_ROOT, SECCOMP}, example
        assert restricted_problems(job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]), example


# -- what must be refused ----------------------------------------------------------------------------
def _pod(job):
    return job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]


def _container(job):
    return _pod(job)["containers"][0]


REFUSED = {
    "the hub's ServiceAccount": (SA, lambda j: _pod(j).update(serviceAccountName="tf-hub")),
    "the notebook ServiceAccount": (SA, lambda j: _pod(j).update(serviceAccountName="jupyter-notebook")),
    "the deprecated serviceAccount field": (
        SA,
        lambda j: (_pod(j).pop("serviceAccountName"), _pod(j).update(serviceAccount="tf-hub")),
    ),
    "an API token": (TOKEN, lambda j: _pod(j).update(automountServiceAccountToken=True)),
    "hostNetwork": (HOST, lambda j: _pod(j).update(hostNetwork=True)),
    "hostPID": (HOST, lambda j: _pod(j).update(hostPID=True)),
    "hostIPC": (HOST, lambda j: _pod(j).update(hostIPC=True)),
    "a hostPort": (HOST, lambda j: _container(j)["ports"][0].update(hostPort=2222)),
    "a hostPath volume": (HOST_PATH, lambda j: _pod(j).update(volumes=[{"name": "root", "hostPath": {"path": "/"}}])),
    "a privileged container": (PRIVILEGED, lambda j: _container(j)["securityContext"].update(privileged=True)),
    "a privileged initContainer": (
        PRIVILEGED,
        lambda j: _pod(j).update(
            initContainers=[
                {
                    "name": "setup",
                    "image": "busybox:1.36",
                    "securityContext": {**copy.deepcopy(CONTAINER_CONTEXT), "privileged": True},
                }
            ]
        ),
    ),
    "allowPrivilegeEscalation": (
        ESCALATION,
        lambda j: _container(j)["securityContext"].update(allowPrivilegeEscalation=True),
    ),
    "an added capability": (
        CAPABILITIES,
        lambda j: _container(j)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
    ),
    "runAsNonRoot false in a container": (
        NON_ROOT,
        lambda j: _container(j)["securityContext"].update(runAsNonRoot=False),
    ),
    "uid 0": (ROOT_UID, lambda j: _container(j)["securityContext"].update(runAsUser=0)),
    "an unconfined seccomp profile": (
        SECCOMP,
        lambda j: _pod(j)["securityContext"].update(seccompProfile={"type": "Unconfined"}),
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_each_rule_refuses_its_breach_and_only_that(admission, case):
    rule, breach = REFUSED[case]
    job = submitted(SEED_JOBS["tf_sample.yaml"], RUNNER)
    breach(job)
    assert rules(refusals(admission, job)) == {rule}
    assert rules(refusals(admission, job, operation="UPDATE", old=submitted(SEED_JOBS["tf_sample.yaml"]))) == {rule}
    if rule not in (SA, TOKEN):  # the rest is Pod Security's own: PSA would refuse the pods as well
        assert restricted_problems(_pod(job)), case


# What else is refused when the user's breach goes through the defaults: none is added beside an
# explicit uid 0 (runAsNonRoot) or privileged: true (allowPrivilegeEscalation: false, which the Pod
# API refuses beside it). The policy still reports the user's own field first where it comes first.
ALSO_REFUSED = {"a privileged container": {ESCALATION}, "uid 0": {NON_ROOT}}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_defaults_never_mask_what_the_user_set(admission, case):
    """The user writes the breach in the YAML; the client fills in the rest; the policy still refuses."""
    rule, breach = REFUSED[case]
    job = copy.deepcopy(SEED_JOBS["tf_sample.yaml"])
    _pod(job).update(serviceAccountName=RUNNER, securityContext={})
    _container(job)["securityContext"] = {"capabilities": {}}
    breach(job)
    job = submitted(job)
    messages = refusals(admission, job)
    assert rules(messages) == {rule} | ALSO_REFUSED.get(case, set())
    if case != "uid 0":  # there the policy's order puts runAsNonRoot first
        assert messages[0].startswith(rule)
    if rule not in (SA, TOKEN):
        assert restricted_problems(_pod(job)), case


def test_the_reported_escape_is_refused(admission):
    """The finding: a TFJob running as the hub's account, privileged, with the hub's PVC mounted,
    as the user wrote it and the client sends it (the defaults add nothing that hides it)."""
    job = copy.deepcopy(SEED_JOBS["tf_sample.yaml"])
    for replica in job["spec"]["tfReplicaSpecs"].values():
        spec = replica["template"]["spec"]
        spec["serviceAccountName"] = "tf-hub"
        spec["volumes"] = [{"name": "hub-db", "persistentVolumeClaim": {"claimName": "hub-db-tf-hub-0"}}]
        spec["containers"][0]["securityContext"] = {"privileged": True}
        spec["containers"][0]["volumeMounts"] = [{"name": "hub-db", "mountPath": "/srv/jupyterhub"}]
    messages = refusals(admission, submitted(job))
    assert rules(messages) == {SA, PRIVILEGED, ESCALATION}
    assert "tfjob-runner" in messages[0]


def test_policy_does_not_reach_outside_its_binding(admission):
    job = submitted(SEED_JOBS["tf_sample.yaml"], "tf-hub")
    assert refusals(admission, job, namespace="team-a") == []  # another namespace: not bound
    # The operator's status writes go to tfjobs/status, which the policy does not match.
    assert refusals(admission, job, operation="UPDATE", old=job, subresource="status") == []
    assert rules(refusals(admission, job)) == {SA}


def test_a_job_without_replica_specs_is_left_to_the_schema(admission):
    assert (
        refusals(admission, {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "x"}, "spec": {}})
        == []
    )


# -- %%tfjob run ---------------------------------------------------------------------------------
def test_a_run_cell_job_as_the_kubernetes_backend_sends_it_passes(rendered, admission, fake_cluster, tmp_path):
    """`%%tfjob run` on a chief, two workers and a PS: the TFJob (payload ConfigMap mounted, emptyDir
    working directory, the standard-library bootstrap) passes the policy and Pod Security
    `restricted`, and the ConfigMap it carries is what the notebook Role may create."""
    from kubeflow_jupyter.backends.kubernetes import KubernetesBackend
    from kubeflow_jupyter.client import TFJobClient

    (tmp_path / "helper.py").write_text("def double(x):\n    return 2 * x\n")
    backend = KubernetesBackend(kubeconfig=str(fake_cluster.write_kubeconfig(tmp_path / "kubeconfig")))
    sub = TFJobClient(backend=backend).run_cell(
        "import helper\nhelper.double(21)",
        name="policy-run",
        chief=True,
        workers=2,
        ps=1,
        files=["helper.py"],
        root=tmp_path,
        dry_run=True,
    )
    job = submitted(sub.manifest)
    assert refusals(admission, job) == []
    for replica in job["spec"]["tfReplicaSpecs"].values():
        pod = replica["template"]["spec"]
        assert restricted_problems(pod) == []
        kinds = {next(k for k in volume if k != "name") for volume in pod["volumes"]}
        assert kinds == {"configMap", "emptyDir"}, pod["volumes"]
    (configmap,) = sub.objects
    assert configmap["kind"] == "ConfigMap" and configmap["metadata"]["name"].startswith("policy-run")
    role = one(rendered, "Role", "jupyter-notebook")
    assert {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "delete"]} in role["rules"]
