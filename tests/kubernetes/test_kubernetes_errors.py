"""Every way the cluster can say no, as the notebook user reads it (fake API server only:
these need RBAC rules, faults and broken configurations)."""

from __future__ import annotations

import socket

import pytest
import yaml
from support.fake_cluster import fake_client
from support.ports import free_port

from kubeflow_jupyter.backends.kubernetes import KubernetesBackend
from kubeflow_jupyter.client import TFJobClient
from kubeflow_jupyter.errors import BackendError
from kubeflow_jupyter.testing.fake_kube import FakeKubeCluster
from kubeflow_jupyter.testing.fake_kube.tls import make_serving_cert

INSTALL = 'kubectl apply -k "github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=v1.9.0"'


def _rbac_docs(message: str) -> list[dict]:
    snippet = message.split("for example with:\n\n", 1)[1].split("\n\n(kubectl apply", 1)[0]
    return list(yaml.safe_load_all(snippet))


def test_forbidden_create_names_verb_resource_identity_and_the_rule_to_add(fake, job_name, make_tfjob):
    fake.deny("create", "tfjobs", group="kubeflow.org")
    client = fake_client(fake)
    with pytest.raises(BackendError) as err:
        client.submit(make_tfjob(job_name))
    message = str(err.value)
    assert message.startswith(
        "Kubernetes refused: system:serviceaccount:team-a:jupyter may not create tfjobs (API group kubeflow.org) "
        "in namespace 'team-a'. Ask a cluster admin to grant it, for example with:\n\n"
    )
    role, binding = _rbac_docs(message)
    assert role["kind"] == "Role" and role["metadata"]["namespace"] == "team-a"
    assert role["rules"] == [{"apiGroups": ["kubeflow.org"], "resources": ["tfjobs"], "verbs": ["create"]}]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "jupyter", "namespace": "team-a"}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_forbidden_logs_for_a_human_user_names_the_subresource(fake, tmp_path, job_name, make_tfjob):
    kubeconfig = fake.write_kubeconfig(tmp_path / "alice", user="alice@example.com")
    fake.deny("get", "pods/log", user="alice@example.com")
    client = TFJobClient(KubernetesBackend(kubeconfig=str(kubeconfig)))
    client.submit(make_tfjob(job_name, workers=1))
    client.wait(job_name, timeout=60)
    with pytest.raises(BackendError) as err:
        list(client.logs(job_name))
    message = str(err.value)
    assert message.startswith(
        "Kubernetes refused: alice@example.com may not get pods/log (API group core) in namespace 'team-a'."
    )
    role, binding = _rbac_docs(message)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]
    assert binding["subjects"] == [
        {"kind": "User", "name": "alice@example.com", "apiGroup": "rbac.authorization.k8s.io"}
    ]


def test_forbidden_watch_surfaces_from_the_stream(fake, job_name, make_tfjob):
    client = fake_client(fake)
    client.submit(make_tfjob(job_name, workers=1))
    fake.deny("watch", "pods")
    with pytest.raises(BackendError) as err:
        list(client.watch(job_name, timeout=30))
    assert "may not watch pods (API group core) in namespace 'team-a'" in str(err.value)


def test_missing_crd_says_to_install_training_operator(tmp_path, job_name, make_tfjob):
    with FakeKubeCluster(namespace="team-a", crd_installed=False) as bare:
        client = TFJobClient(KubernetesBackend(kubeconfig=str(bare.write_kubeconfig(tmp_path / "kc"))))
        for call in (lambda: client.submit(make_tfjob(job_name)), client.list):
            with pytest.raises(BackendError) as err:
                call()
            assert str(err.value) == (
                "the TFJob CRD (kubeflow.org/v1) is not installed on this cluster "
                f"({bare.url}) — install Kubeflow training-operator: {INSTALL}"
            )


def test_server_errors_say_which_server_failed(fake, job_name):
    client = fake_client(fake)
    fake.fail_next(1, code=500, method="GET", message="etcdserver: request timed out")
    with pytest.raises(BackendError) as err:
        client.list()
    b = client.backend
    assert str(err.value) == (
        f"the Kubernetes API server at {fake.url} ({b.connection.source}) failed (500 Internal Server Error): "
        "Internal error occurred: etcdserver: request timed out — try again; if it persists, the cluster needs "
        "attention"
    )


def test_bad_request_shows_the_servers_message(fake):
    client = fake_client(fake)
    fake.fail_next(1, code=400, method="GET", message='unable to parse requirement: "a b"')
    with pytest.raises(BackendError) as err:
        client.list()
    assert str(err.value) == 'the Kubernetes API server refused the request: unable to parse requirement: "a b"'


def _unreachable(port: int, kubeconfig, context: str, why: str) -> str:
    """The message for an API server that cannot be reached, as users read it."""
    return (
        f"cannot reach the Kubernetes API server at https://127.0.0.1:{port} (kubeconfig {kubeconfig}, context "
        f"'{context}'): {why}. Point --kubeconfig or $KUBECONFIG (and --context or $KUBEFLOW_JUPYTER_KUBE_CONTEXT) "
        "at a reachable cluster, or run on this machine with --backend local"
    )


def test_a_server_that_never_answers_times_out(fake, tmp_path):
    with socket.socket() as silent:  # accepts connections (backlog) but never speaks TLS
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        kubeconfig = fake.write_kubeconfig(tmp_path / "kc", server=f"https://127.0.0.1:{port}", context="silent")
        client = TFJobClient(KubernetesBackend(kubeconfig=str(kubeconfig), request_timeout=0.3))
        with pytest.raises(BackendError) as err:
            client.list()
    assert str(err.value) == _unreachable(port, kubeconfig, "silent", "the connection timed out")


def test_conflict_on_a_stale_update(fake, job_name, make_tfjob):
    """The backend never PUTs, but the fake must refuse stale writes as the server does (409 Conflict)."""
    from kubernetes.client.exceptions import ApiException

    client = fake_client(fake)
    client.submit(make_tfjob(job_name, workers=1))
    api = client.backend._jobs
    obj = api.get_namespaced_custom_object("kubeflow.org", "v1", "team-a", "tfjobs", job_name)
    obj["metadata"]["labels"] = {"a": "b"}
    obj["metadata"]["resourceVersion"] = "1"
    with pytest.raises(ApiException) as err:
        api.replace_namespaced_custom_object("kubeflow.org", "v1", "team-a", "tfjobs", job_name, obj)
    assert err.value.status == 409
    assert yaml.safe_load(err.value.body)["message"] == (
        f'Operation cannot be fulfilled on tfjobs.kubeflow.org "{job_name}": the object has been modified; please '
        "apply your changes to the latest version and try again"
    )


def test_connection_refused_names_the_server_and_how_to_point_elsewhere(fake, tmp_path):
    port = free_port()  # nothing listens there
    kubeconfig = fake.write_kubeconfig(tmp_path / "kc", server=f"https://127.0.0.1:{port}", context="gone")
    client = TFJobClient(KubernetesBackend(kubeconfig=str(kubeconfig), request_timeout=5))
    with pytest.raises(BackendError) as err:
        client.list()
    assert str(err.value) == _unreachable(port, kubeconfig, "gone", "connection refused")


def test_untrusted_certificate_is_a_tls_error(fake, tmp_path):
    kubeconfig = fake.write_kubeconfig(tmp_path / "kc", ca_pem=make_serving_cert("other").ca_pem)
    client = TFJobClient(KubernetesBackend(kubeconfig=str(kubeconfig)))
    with pytest.raises(BackendError) as err:
        client.list()
    message = str(err.value)
    assert message == (
        f"cannot reach the Kubernetes API server at {fake.url} (kubeconfig {kubeconfig}, context 'fake-cluster'): "
        "TLS verification failed (self-signed certificate in certificate chain) — the server's certificate does not "
        "match the cluster CA in the configuration. Point --kubeconfig or $KUBECONFIG (and "
        "--context or $KUBEFLOW_JUPYTER_KUBE_CONTEXT) at a reachable cluster, or run on this machine with --backend local"
    )


def test_rejected_token_is_a_401_message(fake, tmp_path):
    kubeconfig = fake.write_kubeconfig(tmp_path / "kc")
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"][0]["user"]["token"] = "expired"
    kubeconfig.write_text(yaml.safe_dump(config))
    client = TFJobClient(KubernetesBackend(kubeconfig=str(kubeconfig)))
    with pytest.raises(BackendError) as err:
        client.list()
    assert str(err.value) == (
        f"the Kubernetes API server at {fake.url} (kubeconfig {kubeconfig}, context 'fake-cluster') rejected the "
        "credentials (401 Unauthorized): the token or certificate is invalid or expired — refresh your kubeconfig, "
        "or run locally with --backend local"
    )


def test_no_kubeconfig_at_all(monkeypatch):
    import os

    with pytest.raises(BackendError) as err:
        KubernetesBackend()  # the test session's KUBECONFIG is /dev/null
    assert str(err.value).startswith(f"no usable Kubernetes configuration in kubeconfig {os.devnull} (")
    assert str(err.value).endswith(
        "point --kubeconfig or $KUBECONFIG at a kubeconfig with a current context (or "
        "choose one with --context or $KUBEFLOW_JUPYTER_KUBE_CONTEXT), or run on this machine with --backend local"
    )


def test_unknown_context_lists_the_known_ones(fake):
    with pytest.raises(BackendError) as err:
        KubernetesBackend(kubeconfig=str(fake.kubeconfig_path), context="prod")
    assert str(err.value) == (
        f"no context 'prod' in kubeconfig {fake.kubeconfig_path} (contexts: fake-cluster): "
        "choose one with --context or $KUBEFLOW_JUPYTER_KUBE_CONTEXT"
    )
