"""The REST API survives hostile input: every bad body, field or query parameter is a 4xx
with a JSON ``{"message"}`` naming what is wrong, never a 500; sizes are limited before
anything is read or stored; live log streams are capped (429)."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.manifests import HELLO, tfjob_manifest, tfjob_yaml

from kubeflow_jupyter.tfjob.model import DEFAULT_NAMESPACE

pytestmark = pytest.mark.timeout(240)

JSON = {"Content-Type": "application/json"}


async def fetch(jp_fetch, *parts, **kwargs):
    """(status, JSON body or None, raw body) without raising on error statuses."""
    response = await jp_fetch("kubeflow-jupyter", "api", *parts, raise_error=False, **kwargs)
    try:
        body = json.loads(response.body) if response.body else None
    except ValueError:
        body = None
    return response.code, body, response.body


async def post_json(jp_fetch, body, raw: bool = False):
    return await fetch(jp_fetch, "jobs", method="POST", headers=dict(JSON), body=body if raw else json.dumps(body))


def assert_json_error(code: int, body, raw: bytes, *needles: str) -> None:
    assert 400 <= code < 500, (code, raw[:500])
    assert isinstance(body, dict) and isinstance(body.get("message"), str), raw[:500]
    for needle in needles:
        assert needle in body["message"], body["message"]


def job_dirs(home: Path) -> list[Path]:
    root = home / "namespaces" / DEFAULT_NAMESPACE
    return [p for p in root.iterdir() if p.is_dir()] if root.exists() else []


async def submit(jp_fetch, path: str) -> None:
    code, _, raw = await post_json(jp_fetch, {"path": path})
    assert code == 201, raw


async def until_finished(jp_fetch, name: str) -> None:
    for _ in range(1200):
        _, job, _ = await fetch(jp_fetch, "jobs", name)
        if job["state"] in ("Succeeded", "Failed"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} did not finish: {job}")


async def assert_nothing_created(jp_fetch, home: Path) -> None:
    code, listing, _ = await fetch(jp_fetch, "jobs")
    assert code == 200 and listing["jobs"] == []
    assert job_dirs(home) == []


# -- the reviewer's findings, one by one ------------------------------------------------------
@pytest.mark.parametrize(
    "body, needles",
    [
        ({"path": 5}, ["path", "string"]),
        ({"name": 5, "path": "ok.yaml"}, ["name", "string"]),
        ({"command": 5, "path": "ok.yaml"}, ["command", "string"]),
        ({"command": ["python", "x"], "path": "ok.yaml"}, ["command", "string"]),
        ({"command": 'python "-c', "path": "ok.yaml"}, ["--command", "No closing quotation"]),
        ({"command": "python \\", "path": "ok.yaml"}, ["--command"]),
        ({"spec": 5}, ["spec", "YAML text or as a JSON object"]),
        ({"spec": [1, 2]}, ["spec", "array"]),
        ({"spec": True}, ["spec"]),
        ({"path": "ok\x00.yaml"}, ["path", "NUL"]),
        ({"name": "a\x00b", "path": "ok.yaml"}, ["name", "NUL"]),
        ({"command": "python\x00", "path": "ok.yaml"}, ["command", "NUL"]),
        ({"path": "\ud800.yaml"}, ["path", "surrogate"]),
        ({"path": "x" * 5000}, ["path"]),
        ({"path": "ok.yaml", "dry_run": "yes"}, ["dry_run", "true or false"]),
        ({"path": "ok.yaml", "validate": "loose"}, ["validate", "strict, warn, ignore"]),
        ({"spec": {"apiVersion": "kubeflow.org/v1", "kind": "TFJob"}}, ["invalid TFJob"]),
    ],
)
async def test_lab_bad_fields_are_400_naming_the_field(jp_fetch, jp_root_dir, isolated_home, body, needles):
    (Path(jp_root_dir) / "ok.yaml").write_text(tfjob_yaml("ok"))
    code, reply, raw = await post_json(jp_fetch, body)
    assert code == 400, raw
    assert_json_error(code, reply, raw, *needles)
    await assert_nothing_created(jp_fetch, isolated_home)


@pytest.mark.parametrize("depth", [1_000, 100_000])
async def test_lab_deeply_nested_json_is_400(jp_fetch, isolated_home, depth):
    for text in ("[" * depth + "]" * depth, '{"spec": ' + '{"a": ' * depth + "1" + "}" * depth + "}"):
        code, reply, raw = await post_json(jp_fetch, text, raw=True)
        assert_json_error(code, reply, raw, "nested too deeply")
        assert code == 400
    await assert_nothing_created(jp_fetch, isolated_home)


async def test_lab_path_is_read_up_to_the_limit_only_and_must_be_a_file(jp_fetch, jp_root_dir, isolated_home):
    root = Path(jp_root_dir)
    (root / "big.yaml").write_text(tfjob_yaml("big") + "#" + "x" * (2 * 1024 * 1024) + "\n")
    with open(root / "huge.yaml", "wb") as f:  # sparse: no disk used; reading it all would need 64 GiB
        f.truncate(64 * 1024**3)
    (root / "adir").mkdir()
    (root / "zero").symlink_to("/dev/zero")
    os.mkfifo(root / "fifo")
    for path, needle in (
        ("big.yaml", "512 KiB"),
        ("huge.yaml", "512 KiB"),
        ("adir", "no such file"),
        ("zero", "outside the server's root"),
        ("fifo", "no such file"),
    ):
        code, reply, raw = await post_json(jp_fetch, {"path": path})
        assert code == 400, (path, raw)
        assert_json_error(code, reply, raw, needle)
    await assert_nothing_created(jp_fetch, isolated_home)


@pytest.mark.parametrize("tail", ["99999999999999999999", "1000001", "-1", "abc", "1e3", "1" * 5000, "0x10", "٣"])
async def test_lab_bad_tail_is_400_on_logs_and_on_the_stream(jp_fetch, write_job, tail):
    await submit(jp_fetch, write_job("t.yaml", "tailed"))
    await until_finished(jp_fetch, "tailed")
    for parts in (("jobs", "tailed", "logs"), ("jobs", "tailed", "logs", "stream")):
        code, reply, raw = await fetch(jp_fetch, *parts, params={"tail": tail})
        assert code == 400, (parts, raw)
        assert_json_error(code, reply, raw, "tail", "1,000,000")
    code, reply, _ = await fetch(jp_fetch, "jobs", "tailed", "logs", params={"tail": "1000000"})
    assert code == 200 and reply["lines"][-1] == "hello from the worker"


# -- sizes: the limit holds for YAML, JSON objects, files and the request body -----------------
def env_spec(name: str, value_size: int) -> dict:
    """One Worker with an environment variable of ``value_size`` bytes."""
    manifest = tfjob_manifest(name)
    (container,) = manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]
    container["env"] = [{"name": "BIG", "value": "x" * value_size}]
    return manifest


async def test_lab_a_10_mb_json_spec_is_refused_naming_the_limit_and_creates_nothing(jp_fetch, isolated_home):
    code, reply, raw = await post_json(jp_fetch, {"spec": env_spec("huge", 10 * 1024 * 1024)})
    assert code == 413, raw
    assert_json_error(code, reply, raw, "1024 KiB", "512 KiB")
    await assert_nothing_created(jp_fetch, isolated_home)


async def test_lab_a_body_announced_over_64_mib_is_413_before_it_is_read(
    jp_http_port, jp_base_url, jp_auth_header, jp_fetch, isolated_home
):
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
    head = [
        f"POST {jp_base_url}kubeflow-jupyter/api/jobs HTTP/1.1",
        f"Host: 127.0.0.1:{jp_http_port}",
        "Content-Type: application/json",
        f"Content-Length: {100 * 1024 * 1024}",
    ]
    head += [f"{k}: {v}" for k, v in jp_auth_header.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + b'{"spec": "')  # and never the rest
    status = await asyncio.wait_for(reader.readline(), 30)
    assert status.split()[1] == b"413", status
    rest = await asyncio.wait_for(reader.read(), 30)  # the server closes the connection after answering
    reply = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert "102400 KiB" in reply["message"] and "512 KiB" in reply["message"]
    writer.close()
    await assert_nothing_created(jp_fetch, isolated_home)


async def test_lab_a_chunked_body_over_the_limit_is_413(
    jp_http_port, jp_base_url, jp_auth_header, jp_fetch, isolated_home
):
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
    head = [
        f"POST {jp_base_url}kubeflow-jupyter/api/jobs HTTP/1.1",
        f"Host: 127.0.0.1:{jp_http_port}",
        "Content-Type: application/yaml",
        "Transfer-Encoding: chunked",
    ]
    head += [f"{k}: {v}" for k, v in jp_auth_header.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    chunk = b"#" + b"x" * (64 * 1024 - 2) + b"\n"
    for _ in range(40):  # 2.5 MiB, no size announced
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 30)
    assert status.split()[1] == b"413", status
    writer.close()
    await assert_nothing_created(jp_fetch, isolated_home)


async def test_lab_a_json_spec_is_measured_as_json_against_the_manifest_limit(jp_fetch, isolated_home):
    # Under the body limit (1 MiB), over the manifest limit (512 KiB) as JSON.
    code, reply, raw = await post_json(jp_fetch, {"spec": env_spec("big-env", 700 * 1024)})
    assert code == 400, raw
    assert_json_error(code, reply, raw, "512 KiB", "as JSON")
    await assert_nothing_created(jp_fetch, isolated_home)


async def test_lab_command_and_spec_share_one_budget(jp_fetch, isolated_home):
    # Each under 512 KiB alone; the manifest with --command applied is over it.
    # Many small variables (one over 128 KiB could not be passed to a local process).
    env = "env:\n" + "".join(f"- name: V{i}\n  value: {'y' * 200}\n" for i in range(1500))
    spec = tfjob_yaml("budget") + textwrap.indent(env, " " * 12)
    command = "python -c 'pass' " + "z" * (300 * 1024)
    code, reply, raw = await post_json(jp_fetch, {"spec": spec, "command": command})
    assert code == 400, raw
    assert_json_error(code, reply, raw, "512 KiB", "--command")
    await assert_nothing_created(jp_fetch, isolated_home)
    # The same spec with a short command is fine: the budget is the whole manifest.
    code, reply, raw = await post_json(jp_fetch, {"spec": spec, "command": "python -c pass"})
    assert code == 201, raw


async def test_lab_a_yaml_body_over_the_limit_is_413(jp_fetch, isolated_home):
    body = tfjob_yaml("yaml-body") + "#" + "x" * (3 * 1024 * 1024) + "\n"
    code, reply, raw = await fetch(
        jp_fetch, "jobs", method="POST", body=body, headers={"Content-Type": "application/yaml"}
    )
    assert code == 413, raw
    assert_json_error(code, reply, raw, "512 KiB")
    await assert_nothing_created(jp_fetch, isolated_home)


# -- live log streams are capped --------------------------------------------------------------
async def test_lab_open_log_streams_are_capped_with_a_429(
    jp_fetch, write_job, open_stream, jp_http_port, jp_base_url, jp_auth_header
):
    from kubeflow_jupyter.serverext.service import MAX_LOG_STREAMS

    # A bad name is a 404 that gives its slot back: many of them leave the cap untouched.
    for _ in range(MAX_LOG_STREAMS + 5):
        code, _, _ = await fetch(jp_fetch, "jobs", "nope", "logs", "stream")
        assert code == 404
    code = "import time\nprint('first', flush=True)\ntime.sleep(300)"
    await submit(jp_fetch, write_job("silent.yaml", "silent", code=code))
    streams = [
        open_stream("jobs", "silent", "logs", "stream", query="?replica=worker-0") for _ in range(MAX_LOG_STREAMS)
    ]
    for stream in streams:
        await stream.until(lambda e, d: e == "lines" and "first" in d)
        assert stream.status == 200
    code, reply, raw = await fetch(jp_fetch, "jobs", "silent", "logs", "stream")
    assert code == 429, raw
    assert_json_error(code, reply, raw, "too many open log streams", str(MAX_LOG_STREAMS))
    # Other endpoints are not affected.
    code, _, _ = await fetch(jp_fetch, "jobs", "silent", "logs")
    assert code == 200
    # Closing one frees its slot.
    await streams.pop().close()
    path = f"{jp_base_url}kubeflow-jupyter/api/jobs/silent/logs/stream"
    for _ in range(500):
        code, _ = await raw_status(jp_http_port, path, dict(jp_auth_header))
        if code == 200:
            break
        assert code == 429
        await asyncio.sleep(0.02)
    assert code == 200
    for stream in streams:
        await stream.close()
    code, _, _ = await fetch(jp_fetch, "jobs", "silent", method="DELETE")
    assert code == 204


# -- property: whatever is sent, a status < 500, and a JSON message for a 4xx ------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "ok.yaml",
            "/ok.yaml",
            "../ok.yaml",
            "missing.yaml",
            "adir",
            "/etc/passwd",
            "ok",
            "fuzz-a",
            "python -c pass",
            'python "-c',
            "python \\",
            "'",
            "",
            " ",
            "a\x00b",
            "\ud800",
            "x" * 300,
            "9" * 5000,
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
valid_yaml = st.sampled_from([tfjob_yaml("fuzz"), tfjob_yaml("Bad_Name"), "a: [", "- 1\n", "\x00"])
field_values = st.one_of(json_values, valid_yaml)


def nested(depth: int) -> str:
    return '{"spec": ' + "[" * depth + "]" * depth + "}"


# Bodies close to valid ones, so that submits also succeed (201), collide (409) or fail late.
near_valid = st.fixed_dictionaries(
    {"path": st.sampled_from(["ok.yaml", "/ok.yaml", "known.yaml", "adir", "missing.yaml", "../ok.yaml"])},
    optional={
        "name": st.sampled_from(["fuzz-a", "fuzz-b", "Bad_Name", "", "x" * 70, "a\x00b", "-a"]),
        "command": st.sampled_from(
            [
                "python -c pass",
                "python -c 'print(1)'",
                'python "-c',
                "python \\",
                "'",
                "",
                "   ",
                "no-such-program-here",
                "python\x00",
                "python -c " + "p" * 600_000,
            ]
        ),
        "spec": st.sampled_from(
            [
                tfjob_yaml("fuzz-c"),
                tfjob_yaml("fuzz-c").replace("1", "-1"),
                {
                    "apiVersion": "kubeflow.org/v1",
                    "kind": "TFJob",
                    "metadata": {"name": "fuzz-d"},
                    "spec": {
                        "tfReplicaSpecs": {
                            "Worker": {
                                "template": {
                                    "spec": {
                                        "containers": [
                                            {"name": "tensorflow", "image": "i", "command": ["python", "-c", HELLO]}
                                        ]
                                    }
                                }
                            }
                        }
                    },
                },
                {},
                "",
                " ",
            ]
        ),
    },
).map(json.dumps)

submit_bodies = st.one_of(
    near_valid,
    st.fixed_dictionaries(
        {}, optional={"spec": field_values, "path": field_values, "name": field_values, "command": field_values}
    ).map(json.dumps),
    st.dictionaries(st.text(max_size=8), json_values, max_size=4).map(json.dumps),
    json_values.map(json.dumps),
    st.integers(min_value=1, max_value=120_000).map(nested),
    st.integers(min_value=1, max_value=120_000).map(lambda n: "[" * n),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)
content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "application/yaml", "text/plain", ""]
)
query_values = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.sampled_from(
        [
            "",
            "0",
            "10",
            "1000000",
            "1000001",
            "-1",
            "1e3",
            " 5 ",
            "0x1f",
            "٣",
            "9" * 5000,
            "\x00",
            "worker-0",
            "master-0",
            "ps-99",
        ]
    ),
)
queries = st.dictionaries(
    st.sampled_from(["tail", "replica", "name", "command", "path", "x"]), query_values, max_size=4
)
names = st.one_of(
    st.sampled_from(["known", "fuzz-a", "fuzz-c", "nope", "Bad_Name", "..", ".", "a" * 300, "%", "known%00", " "]),
    st.text(min_size=1, max_size=40).filter(lambda s: "/" not in s and s.strip(". ")),
)

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


async def raw_status(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Status of a (possibly endless) event stream, and the body of an error: then hang up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"] + [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        status = int((await asyncio.wait_for(reader.readline(), 30)).split()[1])
        length = 0
        while (line := await asyncio.wait_for(reader.readline(), 30)).strip():
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        body = await asyncio.wait_for(reader.readexactly(length), 30) if status >= 400 and length else b""
        return status, body
    finally:
        writer.close()


async def test_lab_no_input_is_a_500_on_any_endpoint(
    jp_fetch, jp_root_dir, jp_http_port, jp_base_url, jp_auth_header, write_job
):
    """Generated bodies, names and query strings against every endpoint: never a 5xx."""
    root = Path(jp_root_dir)
    (root / "ok.yaml").write_text(tfjob_yaml("ok"))
    (root / "adir").mkdir()
    for name in ("known", "victim"):
        await submit(jp_fetch, write_job(f"{name}.yaml", name))
        await until_finished(jp_fetch, name)
    loop = asyncio.get_running_loop()
    seen: dict[str, set[int]] = {}

    def check(label: str, code: int, body: bytes) -> None:
        seen.setdefault(label, set()).add(code)
        assert code < 500, (label, code, body[:500])
        if code >= 400:
            reply = json.loads(body)
            assert isinstance(reply, dict) and isinstance(reply.get("message"), str), body[:500]

    def on_loop(coro, timeout: float = 60):
        """Run a request on the server's loop from the hypothesis thread."""
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def http(label: str, *parts: str, method: str = "GET", body: str | None = None, params=None, headers=None):
        code, _, raw = on_loop(fetch(jp_fetch, *parts, method=method, body=body, params=params, headers=headers or {}))
        check(label, code, raw or b"")
        return code

    @settings(FUZZ, max_examples=120)
    @given(submit_bodies, content_types, queries)
    def post_jobs(body, content_type, query):
        http(
            "POST jobs",
            "jobs",
            method="POST",
            body=body,
            params=query,
            headers={"Content-Type": content_type} if content_type else {},
        )

    @FUZZ
    @given(queries)
    def get_jobs(query):
        http("GET jobs", "jobs", params=query)

    @FUZZ
    @given(names, queries)
    def get_job(name, query):
        http("GET jobs/<name>", "jobs", name, params=query)

    @FUZZ
    @given(names.filter(lambda n: n != "known"), queries)
    @example("victim", {"x": "1"})
    def delete_job(name, query):
        http("DELETE jobs/<name>", "jobs", name, method="DELETE", params=query)

    @FUZZ
    @given(names, queries)
    def logs(name, query):
        http("GET logs", "jobs", name, "logs", params=query)

    def stream_path(parts: tuple[str, ...], query: dict[str, str]) -> str:
        path = jp_base_url + "kubeflow-jupyter/api/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)
        return path + ("?" + urllib.parse.urlencode(query) if query else "")

    @FUZZ
    @given(names, queries)
    def log_stream(name, query):
        code, body = on_loop(
            raw_status(jp_http_port, stream_path(("jobs", name, "logs", "stream"), query), dict(jp_auth_header))
        )
        check("GET logs/stream", code, body)

    @FUZZ
    @given(queries)
    def events(query):
        code, body = on_loop(raw_status(jp_http_port, stream_path(("events",), query), dict(jp_auth_header)))
        check("GET events", code, body)

    for prop in (post_jobs, get_jobs, get_job, delete_job, logs, log_stream, events):
        await loop.run_in_executor(None, prop)
    # The generators reached the interesting statuses, not just one of them.
    assert {201, 400, 409} <= seen["POST jobs"]
    assert 404 in seen["GET jobs/<name>"] and 200 in seen["GET jobs/<name>"]
    assert {204, 404} <= seen["DELETE jobs/<name>"]
    assert {200, 400, 404} <= seen["GET logs"]
    assert {200, 400, 404} <= seen["GET logs/stream"]
    assert seen["GET events"] == {200}
