"""Which backend ``auto`` picks, which namespace and context the Kubernetes backend uses,
and that the choice is visible in every snapshot."""

from __future__ import annotations

import os

import pytest
import yaml

from kubeflow_jupyter.backends import get_backend, resolve_backend_name
from kubeflow_jupyter.client import TFJobClient


@pytest.fixture
def auto(monkeypatch):
    monkeypatch.delenv("KUBEFLOW_JUPYTER_BACKEND", raising=False)
    monkeypatch.delenv("KUBEFLOW_JUPYTER_KUBE_CONTEXT", raising=False)
    return monkeypatch


def _two_contexts(fake, path) -> os.PathLike:
    """A kubeconfig with contexts ``dev`` (namespace team-a, current) and ``prod`` (namespace team-b)."""
    fake.write_kubeconfig(path, context="dev", namespace="team-a")
    config = yaml.safe_load(path.read_text())
    prod = {"name": "prod", "context": {"cluster": "dev", "user": "dev-user", "namespace": "team-b"}}
    config["contexts"].append(prod)
    path.write_text(yaml.safe_dump(config))
    return path


def test_auto_picks_kubernetes_when_a_kubeconfig_has_a_current_context(auto, fake, job_name, make_tfjob):
    auto.setenv("KUBECONFIG", str(fake.kubeconfig_path))
    assert resolve_backend_name() == "kubernetes"
    client = TFJobClient()
    assert client.backend_name == "kubernetes" and client.namespace == "team-a"
    sub = client.submit(make_tfjob(job_name, workers=1))
    assert sub.snapshot.backend == "kubernetes"
    assert all(s.backend == "kubernetes" for s in client.watch(job_name, timeout=30))


def test_auto_falls_back_to_local_without_a_cluster(auto):
    assert resolve_backend_name() == "local"  # KUBECONFIG is /dev/null in tests
    assert TFJobClient().backend_name == "local"


def test_explicit_local_wins_over_a_kubeconfig(auto, fake):
    auto.setenv("KUBECONFIG", str(fake.kubeconfig_path))
    auto.setenv("KUBEFLOW_JUPYTER_BACKEND", "local")
    assert resolve_backend_name() == "local"
    assert resolve_backend_name("kubernetes") == "kubernetes"


def test_context_from_the_environment_selects_cluster_and_namespace(auto, fake, tmp_path):
    kubeconfig = _two_contexts(fake, tmp_path / "kubeconfig")
    auto.setenv("KUBECONFIG", str(kubeconfig))
    assert get_backend().namespace == "team-a"
    auto.setenv("KUBEFLOW_JUPYTER_KUBE_CONTEXT", "prod")
    backend = get_backend()
    assert backend.namespace == "team-b" and "context 'prod'" in repr(backend)
    assert get_backend(context="dev").namespace == "team-a"
    assert get_backend(namespace="explicit").namespace == "explicit"


def test_context_without_namespace_means_default(auto, fake, tmp_path):
    kubeconfig = fake.write_kubeconfig(tmp_path / "kc")
    config = yaml.safe_load(kubeconfig.read_text())
    del config["contexts"][0]["context"]["namespace"]
    kubeconfig.write_text(yaml.safe_dump(config))
    assert get_backend("kubernetes", kubeconfig=str(kubeconfig)).namespace == "default"


def test_in_cluster_service_account_and_its_namespace(auto, fake, tmp_path, job_name, make_tfjob):
    from kubernetes.config import incluster_config

    from kubeflow_jupyter.backends.kubernetes import connection

    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text(fake.add_user("system:serviceaccount:team-a:notebook"))
    (sa / "ca.crt").write_bytes(fake.tls.ca_pem)
    (sa / "namespace").write_text("team-a\n")
    auto.setattr(connection, "SA_DIR", sa)
    auto.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(sa / "token"))
    auto.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(sa / "ca.crt"))
    auto.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    auto.setenv("KUBERNETES_SERVICE_PORT", str(fake.port))
    backend = get_backend("kubernetes")
    assert backend.namespace == "team-a" and "in-cluster service account" in repr(backend)
    TFJobClient(backend).submit(make_tfjob(job_name, workers=1))
    creates = [r for r in fake.requests if r.verb == "create" and job_name in str(r.body)]
    assert [r.user for r in creates] == ["system:serviceaccount:team-a:notebook"]
