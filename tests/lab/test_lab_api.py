"""The REST API and push channel behind the TFJobs sidebar, against the real local backend."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from support.lab_api import fetch_json, submit
from support.manifests import HELLO, tfjob_yaml

from kubeflow_jupyter.tfjob.model import DEFAULT_NAMESPACE

pytestmark = pytest.mark.timeout(180)


async def until_finished(open_stream, name: str) -> dict:
    """The job's snapshot once the push channel reports it finished."""
    stream = open_stream("events")
    _, job = await stream.until(
        lambda e, d: (
            (e == "job" and d["name"] == name and d["state"] in ("Succeeded", "Failed"))
            or (e == "jobs" and any(j["name"] == name and j["state"] in ("Succeeded", "Failed") for j in d["jobs"]))
        )
    )
    await stream.close()
    return job if "name" in job else next(j for j in job["jobs"] if j["name"] == name)


async def test_lab_list_is_empty_and_names_the_backend(jp_fetch):
    code, body = await fetch_json(jp_fetch, "jobs")
    assert code == 200
    assert body == {"backend": "local", "namespace": DEFAULT_NAMESPACE, "jobs": []}


async def test_lab_submit_from_a_file_runs_lists_reads_logs_and_deletes(jp_fetch, write_job, open_stream):
    path = write_job("jobs/hello.yaml", "hello", replicas=2)
    created = await submit(jp_fetch, path)
    assert created["job"]["name"] == "hello"
    assert created["job"]["counts"]["total"] == 2

    finished = await until_finished(open_stream, "hello")
    assert finished["state"] == "Succeeded"

    code, listing = await fetch_json(jp_fetch, "jobs")
    assert [j["name"] for j in listing["jobs"]] == ["hello"]

    code, job = await fetch_json(jp_fetch, "jobs", "hello")
    assert code == 200
    assert job["state"] == "Succeeded"
    assert sorted(r["id"] for r in job["replicas"]) == ["worker-0", "worker-1"]
    # The operator's default success policy: worker 0 exiting 0 ends the job (others may be stopped).
    assert job["replicas"][0]["id"] == "worker-0" and job["replicas"][0]["phase"] == "Succeeded"
    assert job["counts"]["total"] == 2 and job["counts"]["failed"] == 0
    assert job["defaultReplica"] == "worker-0"  # no chief: the sidebar opens worker 0's log first

    code, logs = await fetch_json(jp_fetch, "jobs", "hello", "logs", params={"replica": "worker-0"})
    assert code == 200
    assert logs["lines"][-1] == "hello from the worker"
    code, logs = await fetch_json(jp_fetch, "jobs", "hello", "logs", params={"replica": "worker-0", "tail": "0"})
    assert logs["lines"] == []

    response = await jp_fetch("kubeflow-jupyter", "api", "jobs", "hello", method="DELETE")
    assert response.code == 204
    code, body = await fetch_json(jp_fetch, "jobs", "hello")
    assert code == 404
    assert "hello" in body["message"]


async def test_lab_default_replica_is_the_chief_when_the_job_has_one(jp_fetch, jp_root_dir, open_stream):
    # The Chief comes after the Workers in the spec and in no list order: the server must choose it.
    spec = tfjob_yaml("chiefly", {"Worker": (2, "Never", HELLO), "Chief": (1, "Never", HELLO)})
    (Path(jp_root_dir) / "chiefly.yaml").write_text(spec)
    created = await submit(jp_fetch, "chiefly.yaml")
    assert created["job"]["counts"]["total"] == 3
    assert created["job"]["defaultReplica"] == "chief-0"
    await until_finished(open_stream, "chiefly")
    code, job = await fetch_json(jp_fetch, "jobs", "chiefly")
    assert code == 200 and job["defaultReplica"] == "chief-0"
    code, _ = await fetch_json(jp_fetch, "jobs", "chiefly", method="DELETE")
    assert code == 204


async def test_lab_submit_yaml_body_with_name_and_command_from_the_query(jp_fetch, jp_root_dir, open_stream):
    yaml_text = tfjob_yaml("original", {"Worker": (1, "Never", "print('from the spec')")})
    code, body = await fetch_json(
        jp_fetch,
        "jobs",
        method="POST",
        body=yaml_text,
        params={"name": "renamed", "command": "python -c \"print('from the query')\""},
        headers={"Content-Type": "application/yaml"},
    )
    assert code == 201, body
    assert body["job"]["name"] == "renamed"
    assert (await until_finished(open_stream, "renamed"))["state"] == "Succeeded"
    code, logs = await fetch_json(jp_fetch, "jobs", "renamed", "logs")
    assert logs["lines"][-1] == "from the query"


async def test_lab_live_log_stream_delivers_lines_while_the_replica_runs(jp_fetch, jp_root_dir, write_job, open_stream):
    # The replica prints, then waits for a file the test creates only after seeing that line:
    # the second line can only arrive if the stream is live.
    code = (
        "import os, time\nprint('first', flush=True)\nwhile not os.path.exists('go'): time.sleep(0.05)\nprint('second')"
    )
    path = write_job("live/job.yaml", "live", code=code)
    await submit(jp_fetch, path)

    stream = open_stream("jobs", "live", "logs", "stream", query="?replica=worker-0")
    event, lines = await stream.until(lambda e, d: e == "lines" and "first" in d)
    assert stream.status == 200
    (Path(jp_root_dir) / "go").touch()  # the sidebar's jobs run in the Jupyter root
    seen = list(lines)
    while True:
        event, data = await stream.next()
        if event != "lines":
            break
        seen += data
    assert event == "end"
    assert seen[-2:] == ["first", "second"]


def log_pumps() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "kubeflow-jupyter-logs"}


async def test_lab_live_log_stream_ends_its_follower_when_the_client_hangs_up(jp_fetch, write_job, open_stream):
    # The replica prints once, then stays silent for minutes: only the hang-up can end the follow.
    code = "import time\nprint('first', flush=True)\ntime.sleep(300)"
    await submit(jp_fetch, write_job("silent/job.yaml", "silent", code=code))
    before = log_pumps()
    stream = open_stream("jobs", "silent", "logs", "stream", query="?replica=worker-0")
    await stream.until(lambda e, d: e == "lines" and "first" in d)
    pumps = log_pumps() - before
    assert len(pumps) == 1
    await stream.close()
    for _ in range(500):  # the server's loop runs in this thread: let it see the hang-up
        if not any(t.is_alive() for t in pumps):
            break
        await asyncio.sleep(0.02)
    assert not any(t.is_alive() for t in pumps)
    code, job = await fetch_json(jp_fetch, "jobs", "silent")
    assert job["state"] == "Running"  # the follower ended, not the replica
    code, _ = await fetch_json(jp_fetch, "jobs", "silent", method="DELETE")
    assert code == 204


async def test_lab_push_channel_reports_submit_changes_and_delete(jp_fetch, write_job, open_stream):
    stream = open_stream("events")
    event, data = await stream.next()
    assert stream.status == 200
    assert (event, data) == ("jobs", {"jobs": []})

    await submit(jp_fetch, write_job("a.yaml", "pushed"))
    event, job = await stream.until(lambda e, d: e == "job" and d["name"] == "pushed")
    assert job["counts"]["total"] == 1
    _, job = await stream.until(lambda e, d: e == "job" and d["name"] == "pushed" and d["state"] == "Succeeded")
    assert job["replicas"][0]["exit_code"] == 0

    # A second sidebar gets the current state first.
    second = open_stream("events")
    event, data = await second.next()
    assert event == "jobs" and [j["name"] for j in data["jobs"]] == ["pushed"]
    # ...as row summaries (replicas come with `job` events and GET jobs/<name>).
    summary = data["jobs"][0]
    assert summary["state"] == "Succeeded" and summary["counts"]["total"] == 1
    assert "replicas" not in summary and "defaultReplica" not in summary

    await jp_fetch("kubeflow-jupyter", "api", "jobs", "pushed", method="DELETE")
    assert await stream.until(lambda e, d: e == "deleted") == ("deleted", {"name": "pushed"})
    assert await second.until(lambda e, d: e == "deleted") == ("deleted", {"name": "pushed"})


async def test_lab_invalid_spec_is_a_400_naming_every_field(jp_fetch, jp_root_dir):
    bad = tfjob_yaml("bad", {"Worker": (1, "Never", "pass")}).replace("Never", "Sometimes")
    (Path(jp_root_dir) / "bad.yaml").write_text(bad.replace("name: tensorflow", "name: tf"))
    code, body = await fetch_json(
        jp_fetch,
        "jobs",
        method="POST",
        body=json.dumps({"path": "bad.yaml"}),
        headers={"Content-Type": "application/json"},
    )
    assert code == 400
    paths = [p["path"] for p in body["problems"]]
    assert "spec.tfReplicaSpecs.Worker.restartPolicy" in paths
    assert "spec.tfReplicaSpecs.Worker.template.spec.containers" in paths
    assert body["message"].startswith("invalid TFJob")
    code, listing = await fetch_json(jp_fetch, "jobs")
    assert listing["jobs"] == []  # nothing was created


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"path": "../outside.yaml"}, "outside the server's root"),
        ({"path": "missing.yaml"}, "no such file"),
        ({}, "nothing to submit"),
        ([1, 2], "JSON object"),
    ],
)
async def test_lab_bad_submit_requests_are_400_with_a_message(jp_fetch, body, fragment):
    code, reply = await fetch_json(
        jp_fetch, "jobs", method="POST", body=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert code == 400
    assert fragment in reply["message"]


async def test_lab_name_conflict_is_409(jp_fetch, write_job, open_stream):
    path = write_job("dup.yaml", "dup")
    await submit(jp_fetch, path)
    code, body = await fetch_json(
        jp_fetch, "jobs", method="POST", body=json.dumps({"path": path}), headers={"Content-Type": "application/json"}
    )
    assert code == 409
    assert "already exists" in body["message"]
    await until_finished(open_stream, "dup")


async def test_lab_unknown_job_and_replica_are_404(jp_fetch, write_job, open_stream):
    for parts, method in [
        (("jobs", "nope"), "GET"),
        (("jobs", "nope"), "DELETE"),
        (("jobs", "nope", "logs"), "GET"),
        (("jobs", "nope", "logs", "stream"), "GET"),
    ]:
        code, body = await fetch_json(jp_fetch, *parts, method=method)
        assert code == 404, parts
        assert "no TFJob named 'nope'" in body["message"]

    await submit(jp_fetch, write_job("one.yaml", "one"))
    code, body = await fetch_json(jp_fetch, "jobs", "one", "logs", params={"replica": "ps-3"})
    assert code == 404
    assert "worker-0" in body["message"]  # names the replicas that exist
    code, body = await fetch_json(jp_fetch, "jobs", "one", "logs", params={"tail": "-2"})
    assert code == 400
    assert "tail" in body["message"]
    await until_finished(open_stream, "one")


ROUTES = [
    ("GET", ("jobs",)),
    ("POST", ("jobs",)),
    ("GET", ("jobs", "x")),
    ("DELETE", ("jobs", "x")),
    ("GET", ("jobs", "x", "logs")),
    ("GET", ("jobs", "x", "logs", "stream")),
    ("GET", ("events",)),
]


@pytest.mark.parametrize("method, parts", ROUTES)
async def test_lab_every_route_refuses_requests_without_a_token(jp_fetch, method, parts):
    body = "{}" if method == "POST" else None
    response = await jp_fetch(
        "kubeflow-jupyter", "api", *parts, method=method, body=body, headers={"Authorization": ""}, raise_error=False
    )
    assert response.code == 403


async def test_lab_mutating_calls_need_the_xsrf_token_with_a_cookie_login(jp_fetch, jp_serverapp, write_job):
    # Log in as a browser does: the token in a URL once gives the login cookie; a page gives _xsrf.
    token = jp_serverapp.identity_provider.token
    cookies = {}
    for parts, params in [(("api", "status"), {"token": token}), (("login",), {})]:
        response = await jp_fetch(*parts, params=params, headers={"Authorization": ""})
        for header in response.headers.get_list("Set-Cookie"):
            name, value = header.split(";", 1)[0].split("=", 1)
            cookies[name] = value
    assert "_xsrf" in cookies and any(n.startswith("username-") for n in cookies)
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())

    path = write_job("x.yaml", "xsrf")

    async def call(method: str, *parts: str, xsrf: bool):
        """A request as the browser sends it: the login cookie, no token; with or without the _xsrf header."""
        body = json.dumps({"path": path}) if method == "POST" else None
        return await jp_fetch(
            "kubeflow-jupyter",
            "api",
            "jobs",
            *parts,
            method=method,
            body=body,
            raise_error=False,
            headers={"Authorization": "", "Cookie": cookie, "Content-Type": "application/json"}
            | ({"X-XSRFToken": cookies["_xsrf"]} if xsrf else {}),
        )

    assert (await call("POST", xsrf=False)).code == 403
    assert (await call("DELETE", "xsrf", xsrf=False)).code == 403
    _, listing = await fetch_json(jp_fetch, "jobs")
    assert listing["jobs"] == []  # the refused POST created nothing

    assert (await call("POST", xsrf=True)).code == 201
    assert (await call("DELETE", "xsrf", xsrf=True)).code == 204


def test_lab_every_handler_is_authenticated():
    """The extension template's check: a server that forbids unauthenticated access warns about no handler."""
    import warnings

    from jupyter_server.serverapp import ServerApp
    from jupyter_server.utils import JupyterServerAuthWarning

    app = ServerApp(
        allow_unauthenticated_access=False,
        jpserver_extensions={"kubeflow_jupyter": True},
        reraise_server_extension_failures=True,
    )
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        app.initialize(argv=[], find_extensions=False, new_httpserver=False)
    routes = [
        r
        for r in app.web_app.default_router.rules[0].target.rules
        if "kubeflow-jupyter" in str(r.matcher.regex.pattern)
    ]
    assert len(routes) == 6
    problems = [str(r.message) for r in records if issubclass(r.category, JupyterServerAuthWarning)]
    assert problems == []


async def test_lab_a_sidebar_that_connects_later_is_told_the_newest_state_of_quick_jobs(
    jp_fetch, write_job, open_stream
):
    # One sidebar open all along (the feed's watch runs), quick jobs submitted through the API,
    # each waited for until GET says Succeeded: a sidebar that connects then must not be told
    # the submit's first snapshot (Created), which reached the feed after the watch's newer ones.
    first = open_stream("events")
    await first.next()
    names = [f"quick-{i}" for i in range(5)]
    for name in names:
        await submit(jp_fetch, write_job(f"{name}.yaml", name))
    for name in names:
        for _ in range(600):
            _, job = await fetch_json(jp_fetch, "jobs", name)
            if job["state"] == "Succeeded":
                break
            await asyncio.sleep(0.1)
        assert job["state"] == "Succeeded", job
    # The feed has applied the watch's last updates once the open sidebar has been told them
    # (a condition, not a sleep: under load the watch's thread may be seconds behind GET).
    told: dict[str, str] = {}
    while any(told.get(n) != "Succeeded" for n in names):
        event, data = await first.next()
        if event == "job":
            told[data["name"]] = data["state"]
    later = open_stream("events")
    event, data = await later.next()
    assert event == "jobs"
    assert {j["name"]: j["state"] for j in data["jobs"]} == {name: "Succeeded" for name in names}
    await later.close()
    await first.close()


async def test_lab_a_corrupt_job_is_one_unknown_row_in_the_list_the_job_and_the_push_channel(
    jp_fetch, jp_serverapp, write_job, open_stream
):
    from kubeflow_jupyter.backends.local import LocalBackend

    for name in ("fine", "broken"):
        await submit(jp_fetch, write_job(f"{name}.yaml", name))
        await until_finished(open_stream, name)
    # The damage is written behind the store's back (no journal entry): a running feed sees it at
    # its next resync; one started now lists it. Wait until the closed streams have left the feed
    # (the server notices a hang-up asynchronously), so the stream below starts a fresh one.
    feed = jp_serverapp.web_app.settings["kubeflow_jupyter_service"].feed
    for _ in range(600):
        if not feed._subscribers:
            break
        await asyncio.sleep(0.05)
    assert not feed._subscribers
    LocalBackend().store.job("broken").status_file.write_text('{"x')

    code, listing = await fetch_json(jp_fetch, "jobs")
    assert code == 200, listing
    states = {j["name"]: (j["state"], j["message"]) for j in listing["jobs"]}
    assert states["fine"][0] == "Succeeded"
    assert states["broken"][0] == "Unknown" and "status.json" in states["broken"][1]
    code, job = await fetch_json(jp_fetch, "jobs", "broken")
    assert code == 200 and job["state"] == "Unknown"
    stream = open_stream("events")
    event, data = await stream.next()
    assert event == "jobs"
    assert {j["name"]: j["state"] for j in data["jobs"]} == {"fine": "Succeeded", "broken": "Unknown"}
    await stream.close()
