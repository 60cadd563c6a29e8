"""A TFJob's logdir and TensorBoard on a cluster (the fake API server): ``--logdir pvc://CLAIM/SUBPATH``
mounts the claim in every replica with $TFJOB_LOGDIR (accepted by the real CRD's schema), the seed's
v1alpha1 ``spec.tensorboard`` converts to it, and ``tensorboard()`` creates Kubeflow's Tensorboard owned
by the TFJob when the cluster serves its CRD, else says in one line what is missing."""

from __future__ import annotations

import pytest
import yaml
from support.fake_cluster import fake_client

from kubeflow_jupyter.client import TFJobClient
from kubeflow_jupyter.metrics.tensorboard import ClusterTensorBoard, TensorBoardUnavailable
from kubeflow_jupyter.tfjob.model import ANNOTATION_LOGDIR


@pytest.fixture
def client(fake) -> TFJobClient:
    return fake_client(fake)


@pytest.fixture
def tensorboard_crd(fake):
    fake.install_tensorboard_crd()
    yield fake
    fake.install_tensorboard_crd(False)


def sent_tfjob(fake, name: str, dry_run: bool = False) -> dict:
    """The TFJob body the client POSTed for ``name`` (the last such request)."""
    posts = [
        r.body
        for r in fake.requests
        if r.method == "POST"
        and r.path.split("?")[0].endswith("/tfjobs")
        and ("dryRun=All" in r.path) == dry_run
        and (r.body or {}).get("metadata", {}).get("name") == name
    ]
    assert posts, f"no POST of TFJob {name}"
    return posts[-1]


def assert_mounted(obj: dict, claim: str, subpath: str) -> None:
    for rtype, spec in obj["spec"]["tfReplicaSpecs"].items():
        pod = spec["template"]["spec"]
        assert {"name": "kfj-logdir", "persistentVolumeClaim": {"claimName": claim}} in pod["volumes"], rtype
        (container,) = [c for c in pod["containers"] if c["name"] == "tensorflow"]
        assert {"name": "kfj-logdir", "mountPath": "/kfj/logdir", "subPath": subpath} in container["volumeMounts"]
        assert {"name": "TFJOB_LOGDIR", "value": "/kfj/logdir"} in container["env"], rtype


def test_logdir_mounts_the_claim_in_every_replica_and_names_it_in_tfjob_logdir(make_tfjob, fake, client, job_name):
    sub = client.submit(make_tfjob(job_name, workers=2, chief=True), logdir="pvc://runs/team-a/mnist")
    assert sub.manifest["metadata"]["annotations"][ANNOTATION_LOGDIR] == "pvc://runs/team-a/mnist"
    assert_mounted(sent_tfjob(fake, job_name), "runs", "team-a/mnist")
    stored = fake.tfjob(job_name)  # admitted by the real CRD's structural schema: nothing pruned
    assert_mounted(stored, "runs", "team-a/mnist")
    assert stored["metadata"]["annotations"][ANNOTATION_LOGDIR] == "pvc://runs/team-a/mnist"
    assert client.logdir(job_name) == "pvc://runs/team-a/mnist"
    client.delete(job_name)


def test_without_a_logdir_nothing_is_mounted(make_tfjob, fake, client, job_name):
    client.submit(make_tfjob(job_name, workers=1), dry_run=True)
    pod = sent_tfjob(fake, job_name, dry_run=True)["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert "volumes" not in pod and all("TFJOB_LOGDIR" not in str(c.get("env")) for c in pod["containers"])


def test_the_seed_tensorboard_logdir_on_a_claim_converts_to_the_jobs_logdir(fake, client, job_name):
    legacy = {
        "apiVersion": "tensorflow.org/v1alpha1",
        "kind": "TfJob",
        "metadata": {"name": job_name},
        "spec": {
            "replicaSpecs": [
                {
                    "replicas": 1,
                    "tfReplicaType": "MASTER",
                    "template": {"spec": {"containers": [{"name": "tensorflow", "image": "python:3.11-slim"}]}},
                }
            ],
            "tensorboard": {
                "logDir": "/tmp/tensorflow/mnist",
                "volumes": [{"name": "logs", "persistentVolumeClaim": {"claimName": "tb-logs"}}],
                "volumeMounts": [{"name": "logs", "mountPath": "/tmp/tensorflow"}],
                "serviceType": "LoadBalancer",
            },
        },
    }
    sub = client.submit(yaml.safe_dump(legacy), dry_run=True)
    assert sub.manifest["metadata"]["annotations"][ANNOTATION_LOGDIR] == "pvc://tb-logs/mnist"
    assert any("spec.tensorboard.logDir → annotation" in n and "pvc://tb-logs/mnist" in n for n in sub.notices)
    assert not any("tensorboard" in w.lower() for w in sub.warnings), sub.warnings
    assert_mounted(sent_tfjob(fake, job_name, dry_run=True), "tb-logs", "mnist")

    legacy["spec"]["tensorboard"] = {"logDir": "/tmp/tensorflow/mnist"}
    sub = client.submit(yaml.safe_dump(legacy), dry_run=True)
    assert ANNOTATION_LOGDIR not in (sub.manifest["metadata"].get("annotations") or {})
    (warning,) = [w for w in sub.warnings if "spec.tensorboard" in w]
    assert "not on a PersistentVolumeClaim volume" in warning and "--logdir pvc://CLAIM/SUBPATH" in warning


def test_tensorboard_is_created_once_owned_by_the_tfjob_when_the_crd_is_installed(
    make_tfjob, tensorboard_crd, client, job_name
):
    fake = tensorboard_crd
    client.submit(make_tfjob(job_name, workers=1), logdir="pvc://runs/exp1")
    board = client.tensorboard(job_name)
    assert isinstance(board, ClusterTensorBoard) and board.created
    ns = client.namespace
    assert board.url == f"/tensorboard/{ns}/{job_name}-tensorboard/" and board.url in board._repr_html_()
    owner = fake.tfjob(job_name)["metadata"]
    (stored,) = [t for t in fake.tensorboards() if t["metadata"]["name"] == board.name]
    assert stored["spec"] == {"logspath": "pvc://runs/exp1"}
    (ref,) = stored["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"]) == ("TFJob", job_name, owner["uid"])
    again = client.tensorboard(job_name)
    assert again.name == board.name and not again.created
    assert len([t for t in fake.tensorboards() if t["metadata"]["name"] == board.name]) == 1
    client.delete(job_name)  # the garbage collector takes the Tensorboard with its owner
    fake.wait_for(lambda: fake.server.store.find(_tensorboards(), ns, board.name) is None)


def _tensorboards():
    from kubeflow_jupyter.testing.fake_kube.store import TENSORBOARDS

    return TENSORBOARDS


def test_discovery_serves_the_tensorboard_group_only_when_installed(fake, client):
    from kubernetes.client import ApisApi

    apis = ApisApi(client.backend.connection.api_client)
    assert "tensorboard.kubeflow.org" not in [g.name for g in apis.get_api_versions().groups]
    assert client.backend._tensorboard_discovery() == {}
    fake.install_tensorboard_crd()
    try:
        assert "tensorboard.kubeflow.org" in [g.name for g in apis.get_api_versions().groups]
        found = client.backend._tensorboard_discovery()
        assert found["groupVersion"] == "tensorboard.kubeflow.org/v1alpha1"
        assert found["resources"][0]["kind"] == "Tensorboard"
    finally:
        fake.install_tensorboard_crd(False)


def test_without_the_crd_or_a_claim_one_line_says_what_is_missing(
    make_tfjob, fake, client, job_name, tfjob_magics, capsys
):
    client.submit(make_tfjob(job_name, workers=1), logdir="pvc://runs/exp2")
    with pytest.raises(TensorBoardUnavailable) as missing_crd:
        client.tensorboard(job_name)
    message = str(missing_crd.value)
    assert "\n" not in message and "Tensorboard CRD (tensorboard.kubeflow.org/v1alpha1) is not installed" in message
    assert fake.tensorboards() == []

    plain = f"{job_name}-plain"[:50]
    client.submit(make_tfjob(plain, workers=1))
    with pytest.raises(TensorBoardUnavailable, match=r"has no logdir: submit it with --logdir pvc://CLAIM/SUBPATH"):
        client.tensorboard(plain)

    # %tfjob tensorboard: the same line on stderr, and the cell goes on (nothing failed)
    tfjob_magics.client_factory = lambda *key: client
    shown = tfjob_magics.shell.run_line_magic("tfjob", f"tensorboard {plain}")
    assert shown is None
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"no TensorBoard for TFJob {plain!r}: this TFJob has no logdir") and "\n" not in err
    client.delete(job_name)
    client.delete(plain)
