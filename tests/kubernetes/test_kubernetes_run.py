"""Running code on a TFJob's replicas on Kubernetes, against the fake API server: the payload
travels in a ConfigMap owned by the TFJob, the fake's operator runs the generated bootstrap as a
real process with the ConfigMap's files, and the result comes back through the pod logs API."""

from __future__ import annotations

import pytest
from support.fake_cluster import fake_client

from kubeflow_jupyter.errors import KubeflowJupyterError
from kubeflow_jupyter.runcell import PayloadTooLarge, RemoteError
from kubeflow_jupyter.testing.fake_kube.store import CONFIGMAPS, TFJOBS
from kubeflow_jupyter.testing.fake_kube.validation import prune_and_default, validate_configmap
from kubeflow_jupyter.tfjob.schema import crd_schema

CELL = """\
import json, os, helper
config = json.loads(os.environ["TF_CONFIG"])
print("hello from", config["task"]["type"])
{"task": config["task"], "doubled": helper.double(21), "cwd": os.getcwd()}
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "helper.py").write_text("def double(x):\n    return 2 * x\n")
    return tmp_path


def _configmaps(fake, namespace="team-a"):
    return fake.call(fake.server.store.list, CONFIGMAPS, namespace)


def _sent(fake, plural, name_prefix):
    return [
        r.body
        for r in fake.requests
        if r.verb == "create"
        and f"/{plural}" in r.path
        and (r.body or {}).get("metadata", {}).get("name", "").startswith(name_prefix)
    ]


def test_a_cell_runs_on_the_fake_cluster_and_its_result_comes_back_through_the_logs(fake, job_name, project):
    import jsonschema

    client = fake_client(fake)
    job = client.run_cell(
        CELL, name=job_name, chief=True, workers=2, ps=1, files=["helper.py"], root=project, timeout=60
    )
    assert job.state == "Succeeded"
    value = job.result()
    assert {k: value[k] for k in ("task", "doubled")} == {"task": {"type": "chief", "index": 0}, "doubled": 42}
    assert value["cwd"].endswith("/kfj-work")  # the emptyDir working directory, materialised by the fake
    assert "hello from chief" in list(client.logs(job_name, "chief-0"))

    # What was sent validates: the TFJob against the CRD, the ConfigMap against its schema.
    (tfjob,) = _sent(fake, "tfjobs", job_name)
    schema = crd_schema()
    jsonschema.validate(prune_and_default(tfjob, schema), schema)
    (configmap,) = _sent(fake, "configmaps", job_name)
    assert validate_configmap(configmap)[1] == []
    pod = tfjob["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["python", "-u", "/kfj/payload/_kfj/bootstrap.py", "--copy-payload"]
    assert container["workingDir"] == "/kfj/work"
    assert container["image"].startswith("tensorflow/tensorflow:")
    assert {v["name"]: sorted(v) for v in pod["volumes"]} == {
        "kfj-payload": ["configMap", "name"],
        "kfj-work": ["emptyDir", "name"],
    }
    assert {"key": "helper.py", "path": "helper.py"} in pod["volumes"][0]["configMap"]["items"]

    # The ConfigMap is owned by the TFJob (its uid) and goes with it.
    stored = fake.tfjob(job_name)
    (cm,) = [c for c in _configmaps(fake) if c["metadata"]["name"].startswith(job_name)]
    (owner,) = cm["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "name": job_name,
        "uid": stored["metadata"]["uid"],
    }
    client.delete(job_name)
    # (wait_for's condition runs on the fake's loop: it reads the store directly)
    fake.wait_for(lambda: fake.server.store.find(CONFIGMAPS, "team-a", f"{job_name}-payload") is None)


def test_a_remote_error_names_the_replica_through_the_logs(fake, job_name, project):
    client = fake_client(fake)
    # The others wait: without a chief, worker-0 ending first would end the job Succeeded (the operator's rule).
    code = (
        "import json, os, time\n"
        "if json.loads(os.environ['TF_CONFIG'])['task']['index'] == 1:\n"
        "    raise KeyError('shard')\n"
        "time.sleep(1.5)\n"
        "1\n"
    )
    job = client.run_cell(code, name=job_name, workers=2, root=project, timeout=60)
    assert job.state == "Failed"
    with pytest.raises(RemoteError) as caught:
        job.result()
    assert str(caught.value) == "worker-1 raised KeyError: 'shard'"
    client.delete(job_name)


def test_without_configmaps_create_one_clear_error_and_no_tfjob_left(fake, job_name, project):
    client = fake_client(fake)
    fake.deny("create", "configmaps")
    with pytest.raises(KubeflowJupyterError) as caught:
        client.run_cell("1", name=job_name, root=project)
    message = str(caught.value)
    assert f"cannot create the ConfigMap '{job_name}-payload'" in message and "deleted again" in message
    assert "configmaps" in message
    fake.wait_for(lambda: fake.server.store.find(TFJOBS, "team-a", job_name) is None)
    assert [s.name for s in client.list() if s.name == job_name] == []


def test_dry_run_shows_the_tfjob_and_the_configmap_and_creates_nothing(fake, job_name, project):
    client = fake_client(fake)
    sub = client.run_cell("1", name=job_name, files=["helper.py"], root=project, dry_run=True)
    (configmap,) = sub.objects
    assert configmap["kind"] == "ConfigMap" and configmap["metadata"]["name"] == f"{job_name}-payload"
    assert "helper.py" in configmap["data"]
    assert fake.tfjob(job_name) is None
    assert not [c for c in _configmaps(fake) if c["metadata"]["name"].startswith(job_name)]


def test_a_payload_over_the_configmap_limit_is_refused_before_anything_is_created(fake, job_name, project):
    import os

    (project / "big.bin").write_bytes(os.urandom(1024 * 1024))
    client = fake_client(fake)
    before = len(fake.requests)
    with pytest.raises(PayloadTooLarge, match="over the 900 KiB a ConfigMap carries"):
        client.run_cell("1", name=job_name, files=["big.bin"], root=project)
    assert not [r for r in fake.requests[before:] if r.verb == "create"]


def test_the_fake_validates_configmaps_like_the_api_server(fake):
    from kubernetes import client as k8s

    from kubeflow_jupyter.backends.kubernetes import KubernetesBackend

    core = k8s.CoreV1Api(KubernetesBackend(kubeconfig=str(fake.kubeconfig_path)).connection.api_client)
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}, "data": {"a/b": "x"}}
    with pytest.raises(k8s.ApiException) as caught:
        core.create_namespaced_config_map("team-a", bad)
    assert caught.value.status == 422
    assert "metadata.name" in caught.value.body and "data[a/b]" in caught.value.body
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"k": "x" * (1024 * 1024 + 1)}}
    with pytest.raises(k8s.ApiException) as caught:
        core.create_namespaced_config_map("team-a", big)
    assert caught.value.status == 422 and "Too long" in caught.value.body
    owned = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "owned",
            "ownerReferences": [{"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "name": "x", "uid": ""}],
        },
    }
    with pytest.raises(k8s.ApiException) as caught:
        core.create_namespaced_config_map("team-a", owned)
    assert caught.value.status == 422 and "ownerReferences[0].uid" in caught.value.body
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good-cm"}, "data": {"a.txt": "x"}}
    created = core.create_namespaced_config_map("team-a", good)
    assert core.read_namespaced_config_map("good-cm", "team-a").data == {"a.txt": "x"}
    assert created.metadata.uid
    core.delete_namespaced_config_map("good-cm", "team-a")
    assert fake.call(fake.server.store.find, CONFIGMAPS, "team-a", "good-cm") is None
    assert fake.call(fake.server.store.find, TFJOBS, "team-a", "good-cm") is None
