"""The same REST API on the Kubernetes backend, chosen as the magics choose it ($KUBEFLOW_JUPYTER_BACKEND).

The cluster is the project's stand-in API server (kubeflow_jupyter.testing.fake_kube: the real
HTTP protocol, the real CRD, a simulated training-operator): no API server can run here. It is
the session's ``fake_cluster`` (tests/support/fake_cluster.py), shared with tests/kubernetes.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(180)

# A namespace of its own: the session's cluster holds the Kubernetes tests' jobs too.
NAMESPACE = "lab-api"


async def test_lab_api_on_the_kubernetes_backend(jp_fetch, fake_cluster, write_job, open_stream, monkeypatch, tmp_path):
    kubeconfig = fake_cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
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
    assert fake_cluster.tfjob("on-cluster", NAMESPACE) is not None  # created on the cluster, in its namespace

    _, job = await stream.until(lambda e, d: e == "job" and d["name"] == "on-cluster" and d["state"] == "Succeeded")
    assert job["backend"] == "kubernetes" and job["namespace"] == NAMESPACE
    assert sorted(r["id"] for r in job["replicas"]) == ["worker-0", "worker-1"]

    listing = json.loads((await jp_fetch("kubeflow-jupyter", "api", "jobs")).body)
    assert (listing["backend"], listing["namespace"]) == ("kubernetes", NAMESPACE)
    assert [j["name"] for j in listing["jobs"]] == ["on-cluster"]

    response = await jp_fetch("kubeflow-jupyter", "api", "jobs", "on-cluster", method="DELETE")
    assert response.code == 204
    assert await stream.until(lambda e, d: e == "deleted") == ("deleted", {"name": "on-cluster"})
    assert fake_cluster.tfjob("on-cluster", NAMESPACE) is None
