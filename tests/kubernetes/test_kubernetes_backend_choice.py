"""Which backend ``auto`` picks, which namespace and context the Kubernetes backend uses,
and that the choice is visible in every snapshot."""

from __future__ import annotations

import os

import pytest
import yaml
from support.cli import cli_in_process

from kubeflow_jupyter.backends import get_backend, resolve_backend_name
from kubeflow_jupyter.client import TFJobClient
from kubeflow_jupyter.tfjob.model import DEFAULT_NAMESPACE


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
    assert get_backend("kubernetes", kubeconfig=str(kubeconfig)).namespace == DEFAULT_NAMESPACE


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


def test_namespace_from_the_environment_comes_after_the_explicit_one(auto, fake, tmp_path):
    kubeconfig = _two_contexts(fake, tmp_path / "kubeconfig")
    auto.setenv("KUBECONFIG", str(kubeconfig))
    assert get_backend().namespace == "team-a"  # the context's
    assert get_backend("local").namespace == DEFAULT_NAMESPACE
    auto.setenv("KUBEFLOW_JUPYTER_NAMESPACE", "team-c")
    assert get_backend().namespace == "team-c"  # wins over the context's
    assert get_backend("local").namespace == "team-c"
    assert TFJobClient("local").namespace == "team-c"
    assert get_backend(namespace="explicit").namespace == "explicit"
    assert get_backend("local", namespace="explicit").namespace == "explicit"


def test_cli_context_and_kubeconfig_choose_the_cluster(auto, fake, tmp_path, capsys, job_name, make_tfjob):
    kubeconfig = str(_two_contexts(fake, tmp_path / "kubeconfig"))  # not $KUBECONFIG: only the flag names it
    spec = tmp_path / "job.yaml"
    spec.write_text(make_tfjob(job_name, workers=1))
    prod = ("--kubeconfig", kubeconfig, "--context", "prod")
    code, out, _ = cli_in_process(capsys, "submit", str(spec), *prod)
    assert code == 0 and out == f"tfjob {job_name!r} created (kubernetes backend, namespace 'team-b')\n"
    code, out, _ = cli_in_process(capsys, *prod, "get", job_name)  # global options before the verb too
    assert code == 0 and "Namespace:   team-b" in out
    # Its current context: dev, team-a.
    code, _, err = cli_in_process(capsys, "get", job_name, "--kubeconfig", kubeconfig)
    assert code == 2 and f"no TFJob named {job_name!r} in namespace 'team-a'" in err
    code, _, err = cli_in_process(
        capsys, "list", "--backend", "kubernetes", "--kubeconfig", kubeconfig, "--context", "nope"
    )
    assert code == 1 and err.startswith("kubeflow-jupyter: no context 'nope' in kubeconfig") and "prod" in err
    assert cli_in_process(capsys, "delete", job_name, *prod)[0] == 0


def test_cli_refuses_context_and_kubeconfig_on_the_local_backend(capsys, tmp_path):
    code, out, err = cli_in_process(capsys, "list", "--backend", "local", "--context", "prod")
    assert (code, out) == (2, "")
    assert err == (
        "kubeflow-jupyter: --context applies to the kubernetes backend only, but the local backend was "
        "chosen (--backend or $KUBEFLOW_JUPYTER_BACKEND): drop --context, or use --backend kubernetes\n"
    )
    # The backend from the environment: local.
    code, _, err = cli_in_process(capsys, "--context", "prod", "list", "--kubeconfig", str(tmp_path / "kc"))
    assert (
        code == 2
        and err.startswith("kubeflow-jupyter: --context and --kubeconfig apply to the kubernetes backend only")
        and err.count("\n") == 1
    )


def test_magic_context_and_kubeconfig_choose_the_cluster_one_client_each(
    auto, fake, tmp_path, capsys, job_name, make_tfjob, tfjob_magics
):
    magics = tfjob_magics
    shell = magics.shell
    kubeconfig = str(_two_contexts(fake, tmp_path / "kubeconfig"))
    spec = tmp_path / "job.yaml"
    spec.write_text(make_tfjob(job_name, workers=1))
    prod = f"--kubeconfig {kubeconfig} --context prod"
    job = shell.run_line_magic("tfjob", f"submit {spec} {prod}")
    assert job.client.backend_name == "kubernetes" and job.client.namespace == "team-b"
    assert shell.run_line_magic("tfjob", f"get {job_name} {prod}").client is job.client  # cached per key
    shell.run_line_magic("tfjob", f"list --kubeconfig {kubeconfig}")  # the current context: dev
    assert set(magics.clients) == {("kubernetes", None, "prod", kubeconfig), ("kubernetes", None, None, kubeconfig)}
    assert magics.clients[("kubernetes", None, None, kubeconfig)].namespace == "team-a"
    capsys.readouterr()
    result = shell.run_cell("%tfjob --backend local list --context prod")  # fails the cell: one line
    assert type(result.error_in_exec).__name__ == "OptionError"
    assert capsys.readouterr().out == (
        "OptionError: --context applies to the kubernetes backend only, but the local "
        "backend was chosen (--backend or $KUBEFLOW_JUPYTER_BACKEND): drop --context, "
        "or use --backend kubernetes\n"
    )
    shell.run_line_magic("tfjob", f"delete {job_name} {prod}")
