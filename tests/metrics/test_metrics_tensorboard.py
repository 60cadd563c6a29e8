"""TensorBoard per job: started once, reused, serving tf.summary tags, stopped with no process left;
Kubeflow's Tensorboard manifest and CRD check."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

from kubeflow_jupyter.errors import OptionError
from kubeflow_jupyter.metrics.tensorboard import (
    TensorBoardManager,
    missing_for_cluster_tensorboard,
    parse_pvc_logdir,
    tensorboard_crd_installed,
    tensorboard_manifest,
    tensorboard_name,
)

pytestmark = pytest.mark.timeout(240)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_metrics_tensorboard_serves_the_tags_is_reused_and_stops(tf_logdir):
    pytest.importorskip("tensorboard")
    manager = TensorBoardManager()
    try:
        board = manager.start("job-a", tf_logdir)
        assert board.url == f"http://127.0.0.1:{board.port}/"
        with urllib.request.urlopen(board.url + "data/plugin/scalars/tags", timeout=30) as response:
            tags = json.load(response)
        assert "val_loss" in tags.get(".", {})  # the logdir's own run
        assert "epoch_loss" in tags.get("train", {})
        assert manager.start("job-a", tf_logdir) is board  # once per job
        assert manager.get("job-a") is board
        assert board.proxied_url("/user/ann/") == f"/user/ann/proxy/{board.port}/"
        html = board._repr_html_()
        assert f'src="/proxy/{board.port}/"' in html and "<iframe" in html
    finally:
        stopped = manager.stop("job-a")
    assert stopped
    assert board.process.poll() is not None
    assert not group_alive(board.process.pid)  # nothing it started is left either
    assert manager.get("job-a") is None and manager.stop("job-a") is False


def test_metrics_tensorboard_manifest_is_owned_by_the_tfjob():
    manifest = tensorboard_manifest("mnist", "team-a", "uid-123", "pvc://training-logs/mnist/run1/")
    assert manifest["apiVersion"] == "tensorboard.kubeflow.org/v1alpha1" and manifest["kind"] == "Tensorboard"
    assert manifest["metadata"]["name"] == "mnist-tensorboard" and manifest["metadata"]["namespace"] == "team-a"
    owner = manifest["metadata"]["ownerReferences"][0]
    assert (owner["apiVersion"], owner["kind"], owner["name"], owner["uid"]) == (
        "kubeflow.org/v1",
        "TFJob",
        "mnist",
        "uid-123",
    )
    assert manifest["spec"] == {"logspath": "pvc://training-logs/mnist/run1"}
    long = tensorboard_name("x" * 63)
    assert len(long) <= 63 and long != tensorboard_name("x" * 62 + "y")


@pytest.mark.parametrize("bad", ["/tmp/logs", "pvc://", "pvc://Bad_Claim/x", "pvc://claim/../etc", "s3://b/k"])
def test_metrics_tensorboard_refuses_a_logdir_that_is_no_claim(bad):
    with pytest.raises(OptionError):
        parse_pvc_logdir(bad)


def test_metrics_tensorboard_crd_check_reads_discovery():
    group = {
        "kind": "APIGroup",
        "name": "tensorboard.kubeflow.org",
        "versions": [{"groupVersion": "tensorboard.kubeflow.org/v1alpha1", "version": "v1alpha1"}],
    }
    assert tensorboard_crd_installed(group)
    assert tensorboard_crd_installed({"kind": "APIGroupList", "groups": [group]})
    assert not tensorboard_crd_installed({"kind": "APIGroupList", "groups": [{**group, "name": "kubeflow.org"}]})
    resources = {
        "kind": "APIResourceList",
        "groupVersion": "tensorboard.kubeflow.org/v1alpha1",
        "resources": [{"name": "tensorboards", "kind": "Tensorboard", "namespaced": True}],
    }
    assert tensorboard_crd_installed(resources)
    assert not tensorboard_crd_installed({"kind": "Status", "code": 404})
    assert missing_for_cluster_tensorboard("pvc://c/x", group) is None
    assert "CRD" in missing_for_cluster_tensorboard("pvc://c/x", {"kind": "APIGroupList", "groups": []})
    assert "--logdir" in missing_for_cluster_tensorboard(None, group)
