"""The fake API server follows kube-apiserver's rules on the wire: checked with raw HTTP and with
kubectl, a second client that shares no code with ours."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest

from kubeflow_jupyter.testing.fake_kube.store import PODS as PODS_RESOURCE
from kubeflow_jupyter.tfjob import parse_tfjob

NS = "team-a"
TFJOBS = f"/apis/kubeflow.org/v1/namespaces/{NS}/tfjobs"
PODS = f"/api/v1/namespaces/{NS}/pods"
SA = f"system:serviceaccount:{NS}:jupyter"


class Raw:
    """Bare HTTPS requests with a bearer token: no Kubernetes client in between."""

    def __init__(self, fake, user: str = SA):
        self.fake = fake
        self.token = fake.add_user(user)
        with tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False) as f:
            f.write(fake.tls.ca_pem)
        self.ctx = ssl.create_default_context(cafile=f.name)

    def __call__(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        *,
        content_type: str = "application/json",
        token: str | None = None,
        parse: bool = True,
    ) -> tuple[int, str, object]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.fake.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token or self.token}", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as resp:
                status, ctype, raw = resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as e:
            status, ctype, raw = e.code, e.headers.get("Content-Type", ""), e.read()
        text = raw.decode()
        return status, ctype, json.loads(text) if parse and ctype.startswith("application/json") and text else text


@pytest.fixture
def raw(fake):
    return Raw(fake)


def _manifest(name: str, make_tfjob, **kw) -> dict:
    return parse_tfjob(make_tfjob(name, **kw)).job.in_namespace(NS).to_manifest()


def _status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def test_create_stamps_metadata_prunes_unknown_fields_and_ignores_status(fake, raw, job_name, make_tfjob):
    fake.pause_operator()
    body = _manifest(job_name, make_tfjob, workers=1)
    body["spec"]["notAField"] = 1
    body["status"] = {"conditions": [{"type": "Succeeded", "status": "True"}]}
    code, ctype, obj = raw("POST", TFJOBS, body)
    assert code == 201 and ctype.startswith("application/json")
    meta = obj["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    assert "notAField" not in obj["spec"] and "status" not in obj
    code, _, second = raw("POST", TFJOBS, _manifest(job_name + "-2", make_tfjob, workers=1))
    assert int(second["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])

    code, _, again = raw("POST", TFJOBS, _manifest(job_name, make_tfjob, workers=1))
    assert (code, again) == (
        409,
        _status(
            409,
            "AlreadyExists",
            f'tfjobs.kubeflow.org "{job_name}" already exists',
            {"name": job_name, "group": "kubeflow.org", "kind": "tfjobs"},
        ),
    )
    code, _, missing = raw("GET", f"{TFJOBS}/nope")
    assert (code, missing) == (
        404,
        _status(
            404,
            "NotFound",
            'tfjobs.kubeflow.org "nope" not found',
            {"name": "nope", "group": "kubeflow.org", "kind": "tfjobs"},
        ),
    )


def test_invalid_objects_get_422_with_causes(fake, raw, job_name, make_tfjob):
    code, _, body = raw(
        "POST", TFJOBS, {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": job_name}, "spec": {}}
    )
    assert code == 422
    assert body == _status(
        422,
        "Invalid",
        f'TFJob.kubeflow.org "{job_name}" is invalid: spec.tfReplicaSpecs: Required value',
        {
            "name": job_name,
            "group": "kubeflow.org",
            "kind": "TFJob",
            "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": "spec.tfReplicaSpecs"}],
        },
    )
    bad = _manifest(job_name, make_tfjob, workers=1)
    bad["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] = "two"
    bad["metadata"]["name"] = "Bad_Name"
    code, _, body = raw("POST", TFJOBS, bad)
    assert code == 422 and body["message"].startswith(
        'TFJob.kubeflow.org "Bad_Name" is invalid: [metadata.name: '
        'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'
    )
    assert [c["field"] for c in body["details"]["causes"]] == ["metadata.name", "spec.tfReplicaSpecs.Worker.replicas"]


def test_forbidden_and_unauthorized_bodies(fake, raw, job_name, make_tfjob):
    fake.deny("create", "tfjobs", group="kubeflow.org")
    fake.deny("get", "tfjobs", group="kubeflow.org")
    code, _, body = raw("POST", TFJOBS, _manifest(job_name, make_tfjob))
    assert (code, body) == (
        403,
        _status(
            403,
            "Forbidden",
            f'tfjobs.kubeflow.org is forbidden: User "{SA}" cannot create resource "tfjobs" in API '
            f'group "kubeflow.org" in the namespace "{NS}"',
            {"group": "kubeflow.org", "kind": "tfjobs"},
        ),
    )
    code, _, body = raw("GET", f"{TFJOBS}/{job_name}")
    assert body["message"] == (
        f'tfjobs.kubeflow.org "{job_name}" is forbidden: User "{SA}" cannot get resource '
        f'"tfjobs" in API group "kubeflow.org" in the namespace "{NS}"'
    )
    code, _, body = raw("GET", TFJOBS, token="not-a-token")
    assert (code, body) == (401, _status(401, "Unauthorized", "Unauthorized"))


def test_unknown_group_is_a_plain_page_not_found(raw):
    code, ctype, body = raw("GET", "/apis/pytorch.example.org/v1/namespaces/team-a/pytorchjobs")
    assert (code, ctype, body) == (404, "text/plain; charset=utf-8", "404 page not found\n")
    code, _, body = raw("GET", "/apis/kubeflow.org/v1/namespaces/team-a/mpijobs")
    assert code == 404 and body["message"] == "the server could not find the requested resource"


def test_status_subresource_and_stale_updates(fake, raw, job_name, make_tfjob):
    fake.pause_operator()
    _, _, obj = raw("POST", TFJOBS, _manifest(job_name, make_tfjob, workers=1))
    obj["status"] = {"conditions": [{"type": "Created", "status": "True"}]}
    code, _, updated = raw("PUT", f"{TFJOBS}/{job_name}/status", obj)
    assert code == 200 and updated["status"]["conditions"][0]["type"] == "Created"
    assert updated["metadata"]["generation"] == 1
    stale = dict(updated, status={"conditions": []})
    stale["spec"] = dict(updated["spec"], runPolicy={"backoffLimit": 2})
    code, _, spec_changed = raw("PUT", f"{TFJOBS}/{job_name}", stale)
    assert code == 200 and spec_changed["metadata"]["generation"] == 2
    assert spec_changed["status"] == updated["status"]  # the main resource does not write status
    code, _, body = raw("PUT", f"{TFJOBS}/{job_name}", stale)  # stale resourceVersion now
    assert code == 409 and body["reason"] == "Conflict"
    code, _, patched = raw(
        "PATCH",
        f"{TFJOBS}/{job_name}",
        {"metadata": {"labels": {"team": "a"}}},
        content_type="application/merge-patch+json",
    )
    assert code == 200 and patched["metadata"]["labels"] == {"team": "a"}


def _events(raw, path: str) -> list[dict]:
    _, _, text = raw("GET", path, parse=False)
    return [json.loads(line) for line in text.splitlines() if line]


def test_watch_replays_from_a_resource_version_and_expires_after_compaction(fake, raw, job_name, make_tfjob):
    fake.pause_operator()
    _, _, first = raw("POST", TFJOBS, _manifest(job_name, make_tfjob, workers=1))
    raw("POST", TFJOBS, _manifest(job_name + "-b", make_tfjob, workers=1))
    rv = first["metadata"]["resourceVersion"]
    events = _events(raw, f"{TFJOBS}?watch=true&resourceVersion={rv}&timeoutSeconds=2&allowWatchBookmarks=true")
    names = [e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"]
    assert job_name + "-b" in names and job_name not in names  # only what came after rv
    bookmark = events[-1]  # nothing else happened for a second: the server says how far it got
    assert bookmark["type"] == "BOOKMARK" and bookmark["object"]["kind"] == "TFJob"
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) >= int(
        events[-2]["object"]["metadata"]["resourceVersion"]
    )
    selected = _events(raw, f"{TFJOBS}?watch=true&fieldSelector=metadata.name%3D{job_name}&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in selected] == [("ADDED", job_name)]
    fake.compact()
    (expired,) = _events(raw, f"{TFJOBS}?watch=true&resourceVersion={rv}&timeoutSeconds=1")
    assert expired["type"] == "ERROR"
    assert expired["object"]["code"] == 410 and expired["object"]["reason"] == "Expired"
    assert expired["object"]["message"].startswith(f"too old resource version: {rv} (")


def test_pods_follow_the_operators_conventions(fake, raw, job_name, make_tfjob):
    _, _, job = raw("POST", TFJOBS, _manifest(job_name, make_tfjob, workers=2, chief=True))
    fake.wait_for(
        lambda: (
            len(
                fake.server.store.list(
                    PODS_RESOURCE,
                    NS,
                    lambda p: p["metadata"]["labels"].get("training.kubeflow.org/job-name") == job_name,
                )
            )
            == 3
        )
    )
    _, _, pods = raw("GET", f"{PODS}?labelSelector=training.kubeflow.org%2Fjob-name%3D{job_name}")
    by_name = {p["metadata"]["name"]: p for p in pods["items"]}
    assert sorted(by_name) == [f"{job_name}-chief-0", f"{job_name}-worker-0", f"{job_name}-worker-1"]
    chief = by_name[f"{job_name}-chief-0"]
    assert chief["metadata"]["labels"] == {
        "training.kubeflow.org/job-name": job_name,
        "training.kubeflow.org/operator-name": "tfjob-controller",
        "training.kubeflow.org/replica-type": "chief",
        "training.kubeflow.org/replica-index": "0",
        "training.kubeflow.org/job-role": "master",
    }
    assert chief["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "kubeflow.org/v1",
            "kind": "TFJob",
            "name": job_name,
            "uid": job["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    worker1 = by_name[f"{job_name}-worker-1"]
    env = {e["name"]: e["value"] for e in worker1["spec"]["containers"][0]["env"]}
    assert json.loads(env["TF_CONFIG"]) == {
        "cluster": {
            "chief": [f"{job_name}-chief-0.{NS}.svc:2222"],
            "worker": [f"{job_name}-worker-0.{NS}.svc:2222", f"{job_name}-worker-1.{NS}.svc:2222"],
        },
        "task": {"type": "worker", "index": 1},
        "environment": "cloud",
    }
    _, _, chosen = raw(
        "GET",
        f"{PODS}?labelSelector=training.kubeflow.org%2Fjob-name%3D{job_name},"
        "training.kubeflow.org%2Freplica-type+in+(worker)",
    )
    assert len(chosen["items"]) == 2


def test_pod_logs_as_the_kubelet_serves_them(fake, raw, job_name, make_tfjob):
    manifest = _manifest(job_name, make_tfjob, workers=1)
    containers = manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]
    containers.append({"name": "sidecar", "image": "busybox"})
    fake.script(job_name, "worker-0", logs=["one", "two", "three"], run_seconds=0.2)
    raw("POST", TFJOBS, manifest)
    pod = f"{PODS}/{job_name}-worker-0/log"
    fake.wait_for(
        lambda: (
            (fake.server.store.find(PODS_RESOURCE, NS, f"{job_name}-worker-0") or {}).get("spec", {}).get("nodeName")
        )
    )
    code, _, body = raw("GET", pod)
    assert (code, body["message"]) == (
        400,
        f"a container name must be specified for pod {job_name}-worker-0, choose one of: [tensorflow sidecar]",
    )
    code, _, body = raw("GET", pod + "?container=nope")
    assert body["message"] == f"container nope is not valid for pod {job_name}-worker-0"
    code, ctype, text = raw("GET", pod + "?container=tensorflow&follow=true")
    assert (code, ctype, text) == (200, "text/plain", "one\ntwo\nthree\n")
    code, _, text = raw("GET", pod + "?container=tensorflow&tailLines=2")
    assert text == "two\nthree\n"


def test_logs_of_a_container_that_has_not_started(fake, raw, job_name, make_tfjob):
    fake.script(job_name, "worker-0", never_starts=True, waiting_reason="ImagePullBackOff")
    raw("POST", TFJOBS, _manifest(job_name, make_tfjob, workers=1))
    fake.wait_for(
        lambda: (
            (fake.server.store.find(PODS_RESOURCE, NS, f"{job_name}-worker-0") or {}).get("spec", {}).get("nodeName")
        )
    )
    code, _, body = raw("GET", f"{PODS}/{job_name}-worker-0/log?container=tensorflow")
    assert (code, body["message"]) == (
        400,
        f'container "tensorflow" in pod "{job_name}-worker-0" is waiting to start: ImagePullBackOff',
    )


kubectl = shutil.which("kubectl")


@pytest.mark.skipif(kubectl is None, reason="kubectl is not installed: the independent-client check needs it")
def test_kubectl_reads_tfjobs_pods_and_logs(fake, job_name, make_tfjob):
    from kubeflow_jupyter.backends.kubernetes import KubernetesBackend
    from kubeflow_jupyter.client import TFJobClient

    fake.script(job_name, "worker-0", logs=["hello from worker 0"])
    client = TFJobClient(KubernetesBackend(kubeconfig=str(fake.kubeconfig_path)))
    client.submit(make_tfjob(job_name, workers=2))
    client.wait(job_name, timeout=60)

    def run(*args: str) -> str:
        done = subprocess.run(
            [kubectl, "--kubeconfig", str(fake.kubeconfig_path), *args], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    rows = [line.split() for line in run("get", "tfjobs").splitlines()]
    assert rows[0] == ["NAME", "STATE", "AGE"] and [job_name, "Succeeded"] in [r[:2] for r in rows]
    as_json = json.loads(run("get", "tfjob", job_name, "-o", "json"))
    assert as_json["status"]["conditions"][-1]["type"] == "Succeeded"
    pods = [
        line.split()[:3]
        for line in run("get", "pods", "-l", f"training.kubeflow.org/job-name={job_name}").splitlines()[1:]
    ]
    assert pods == [[f"{job_name}-worker-0", "0/1", "Completed"], [f"{job_name}-worker-1", "0/1", "Completed"]]
    assert run("logs", f"{job_name}-worker-0") == "hello from worker 0\n"
    assert run("logs", f"{job_name}-worker-1", "-c", "tensorflow", "--tail", "1").endswith("exiting\n")
