"""The same REST API on the Kubernetes backend, chosen as the magics choose it ($KUBEFLOW_JUPYTER_BACKEND).

The cluster is the project's stand-in API server (kubeflow_jupyter.testing.fake_kube: the real
HTTP protocol, the real CRD, a simulated training-operator): no API server can run here.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def fake_cluster():
    from kubeflow_jupyter.testing.fake_kube import FakeKubeCluster

    with FakeKubeCluster(namespace="team-a", step=0.005, run_seconds=0.03) as cluster:
        yield cluster


async def test_lab_api_on_the_kubernetes_backend(jp_fetch, fake_cluster, write_job, open_stream, monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(fake_cluster.write_kubeconfig(tmp_path / "kubeconfig")))
    monkeypatch.setenv("KUBEFLOW_JUPYTER_BACKEND", "kubernetes")

    stream = open_stream("events")
    assert await stream.next() == ("jobs", {"jobs": []})

    path = write_job("k8s/job.yaml", "on-cluster", replicas=2)
    response = await jp_fetch(
        "kubeflow-jupyter",
        "api",
        "jobs",
        method="POST",
        body=json.dumps({"path": path}),
        headers={"Content-Type": "application/json"},
    )
    assert response.code == 201
    assert fake_cluster.tfjob("on-cluster") is not None  # created on the cluster, in its namespace

    _, job = await stream.until(lambda e, d: e == "job" and d["name"] == "on-cluster" and d["state"] == "Succeeded")
    assert job["backend"] == "kubernetes" and job["namespace"] == "team-a"
    assert sorted(r["id"] for r in job["replicas"]) == ["worker-0", "worker-1"]

    listing = json.loads((await jp_fetch("kubeflow-jupyter", "api", "jobs")).body)
    assert (listing["backend"], listing["namespace"]) == ("kubernetes", "team-a")
    assert [j["name"] for j in listing["jobs"]] == ["on-cluster"]

    response = await jp_fetch("kubeflow-jupyter", "api", "jobs", "on-cluster", method="DELETE")
    assert response.code == 204
    assert await stream.until(lambda e, d: e == "deleted") == ("deleted", {"name": "on-cluster"})
    assert fake_cluster.tfjob("on-cluster") is None
