"""The CLI survives hostile input: every verb × bad values → exit 2, exactly one line on
stderr, no traceback, nothing created; files are read up to the manifest limit only."""

from __future__ import annotations

import math
import subprocess

import pytest
import yaml
from support.cli import cli_subprocess
from support.manifests import tfjob_manifest

from kubeflow_jupyter.client import MAX_TAIL, TFJobClient
from kubeflow_jupyter.errors import OptionError, SpecError

pytestmark = pytest.mark.timeout(120)

UNBALANCED = 'python "-c'
UNKNOWN = "unrecognized arguments"
NO_JOB = "no TFJob named"

# (argv with {JOB} {DIR} {BIG} {MISSING} placeholders, what stderr must say)
CASES = [
    # submit: FILE and its options
    (["submit", "{JOB}", "--command", UNBALANCED], ["--command", "No closing quotation"]),
    (["submit", "{JOB}", "--command", "python \\"], ["--command", "No escaped character"]),
    (["submit", "{JOB}", "--command", ""], ["--command"]),
    (["submit", "{DIR}"], ["is a directory"]),
    (["submit", "/dev/zero"], ["/dev/zero", "not a regular file"]),
    (["submit", "{BIG}"], ["512 KiB"]),
    (["submit", "{HUGE}"], ["512 KiB"]),
    (["submit", "{MISSING}"], ["cannot read", "No such file"]),
    (["submit", "{JOB}", "--timeout", "-1"], ["--timeout"]),
    (["submit", "{JOB}", "--wait", "--timeout", "nan"], ["--timeout"]),
    (["submit", "{JOB}", "--wait", "--timeout", "inf"], ["--timeout"]),
    (["submit", "{JOB}", "--wait", "--timeout", "1e400"], ["--timeout"]),
    (["submit", "{JOB}", "--wait", "--timeout", "0"], ["--timeout"]),
    (["submit", "{JOB}", "--tail", "5"], [UNKNOWN]),
    # list takes no argument and none of those options
    (["list", "--tail", "99999999999999999999"], [UNKNOWN]),
    (["list", "--command", UNBALANCED], [UNKNOWN]),
    (["list", "--timeout", "nan"], [UNKNOWN]),
    (["list", "{DIR}"], [UNKNOWN]),
    # get / logs / wait / delete: NAME, never a file
    (["get", "{DIR}"], [NO_JOB]),
    (["get", "/dev/zero"], [NO_JOB]),
    (["get", "{BIG}"], [NO_JOB]),
    (["get", "x", "-o", "xml"], ["invalid choice"]),
    (["get", "x", "--tail", "-1"], [UNKNOWN]),
    (["logs", "x", "--tail", "99999999999999999999"], ["--tail", "1,000,000"]),
    (["logs", "x", "--tail", str(MAX_TAIL + 1)], ["--tail"]),
    (["logs", "x", "--tail", "-1"], ["--tail"]),
    (["logs", "x", "--tail", "abc"], ["--tail"]),
    (["logs", "x", "--tail", "1e3"], ["--tail"]),
    (["logs", "x", "--tail", "1" * 5000], ["--tail"]),
    (["logs", "/dev/zero"], [NO_JOB]),
    (["logs", "x", "--command", UNBALANCED], [UNKNOWN]),
    (["wait", "x", "--timeout", "-1"], ["--timeout"]),
    (["wait", "x", "--timeout", "nan"], ["--timeout"]),
    (["wait", "x", "--timeout", "inf"], ["--timeout"]),
    (["wait", "x", "--timeout", "-inf"], ["--timeout"]),
    (["wait", "x", "--timeout", "abc"], ["--timeout"]),
    (["wait", "{MISSING}"], [NO_JOB]),
    (["wait", "x", "--tail", "5"], [UNKNOWN]),
    (["delete", "{DIR}"], [NO_JOB]),
    (["delete", "/dev/zero"], [NO_JOB]),
    (["delete", "{MISSING}"], [NO_JOB]),
    (["delete", "x", "--command", UNBALANCED], [UNKNOWN]),
    (["delete", "x", "--timeout", "nan"], [UNKNOWN]),
    (["frobnicate"], ["invalid choice"]),
    ([], ["required"]),
    # global options go before or after the verb; the verb's own options only after it
    (["--backend", "mars", "list"], ["argument --backend: invalid choice: 'mars'"]),
    (["list", "--backend", "mars"], ["argument --backend: invalid choice: 'mars'"]),
    (["--namespace"], ["--namespace", "expected one argument"]),
    (["--tail", "5", "logs", "x"], ["invalid choice"]),
    (["list", "-o", "xml"], ["invalid choice: 'xml'"]),
    (["get", "x", "-o", "table"], ["invalid choice: 'table'"]),
    (["submit", "{JOB}", "--watch"], [UNKNOWN]),  # the notebook's widget
    (["watch", "x"], ["invalid choice: 'watch'"]),
]


@pytest.fixture
def files(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump(tfjob_manifest("hostile", {"Worker": (1, "Never", "pass")})))
    (tmp_path / "adir").mkdir()
    big = tmp_path / "big.yaml"
    big.write_bytes(job.read_bytes() + b"#" + b"x" * (2 * 1024 * 1024) + b"\n")
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as f:  # sparse: no disk used; reading it all would need 64 GiB of memory
        f.truncate(64 * 1024**3)
    return {
        "JOB": str(job),
        "DIR": str(tmp_path / "adir"),
        "BIG": str(big),
        "HUGE": str(huge),
        "MISSING": str(tmp_path / "missing.yaml"),
    }


def run(argv: list[str], stdin=None, input: bytes | None = None) -> subprocess.CompletedProcess:
    """Bytes, not text: hostile input may not decode."""
    return cli_subprocess(*argv, text=False, timeout=60, stdin=stdin, input=input)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, (result.returncode, stderr[-2000:])
    assert "Traceback" not in stderr, stderr[-2000:]
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("kubeflow-jupyter: "), stderr
    for needle in needles:
        assert needle in stderr, stderr
    assert result.stdout == b""


@pytest.mark.parametrize("argv, needles", CASES, ids=[" ".join(c[0])[:60] or "(none)" for c in CASES])
def test_every_verb_refuses_bad_values_with_one_line_and_exit_2(files, isolated_home, argv, needles):
    result = run([arg.format(**files) for arg in argv])
    assert_one_line_error(result, *needles)
    assert list(isolated_home.rglob("*")) == []  # nothing created, not even the store


def test_a_bogus_backend_in_the_environment_is_one_line_and_exit_2(isolated_home, monkeypatch):
    monkeypatch.setenv("KUBEFLOW_JUPYTER_BACKEND", "bogus")
    for argv in (["list"], ["get", "x"], ["delete", "x"]):
        assert_one_line_error(run(argv), "unknown backend 'bogus'", "$KUBEFLOW_JUPYTER_BACKEND")
    assert list(isolated_home.rglob("*")) == []


@pytest.mark.parametrize("source", ["2 MB", "/dev/zero"])
def test_standard_input_is_read_up_to_the_limit_only(isolated_home, source):
    if source == "/dev/zero":
        with open("/dev/zero", "rb") as zero:
            result = run(["submit", "-"], stdin=zero)
    else:
        result = run(["submit", "-"], input=b"a: b\n" + b"#" * (2 * 1024 * 1024))
    assert_one_line_error(result, "standard input", "512 KiB")
    assert list(isolated_home.rglob("*")) == []


# -- the rules live in the client: the CLI, the REST API and the magics share them -------------
def test_the_client_refuses_a_command_that_does_not_split_before_reading_anything(tmp_path):
    client = TFJobClient("local")
    for command, needle in (
        (UNBALANCED, "No closing quotation"),
        ("python \\", "No escaped character"),
        ("python\x00", "NUL"),
        ("x" * (600 * 1024), "512 KiB"),
        (5, "text"),
    ):
        with pytest.raises(SpecError) as err:
            client.prepare(tmp_path / "not-read.yaml", command=command)
        assert [p.path for p in err.value.problems] == ["--command"]
        assert needle in str(err.value)


def test_the_client_refuses_tail_and_timeout_out_of_range():
    client = TFJobClient("local")
    for tail in (-1, MAX_TAIL + 1, 10**20, 1.5, "5", True):
        with pytest.raises(OptionError, match="--tail"):
            client.logs("x", tail=tail)
    for timeout in (-1, math.nan, math.inf, 10**12, "5"):
        with pytest.raises(OptionError, match="--timeout"):
            client.wait("x", timeout=timeout)


def test_a_dict_spec_and_the_applied_command_share_the_manifest_limit(tmp_path):
    manifest = tfjob_manifest("budget", {"Worker": (1, "Never", "pass"), "PS": (1, "Never", "pass")})
    client = TFJobClient("local")
    big_env = dict(manifest)
    container = manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "BIG", "value": "x" * (10 * 1024 * 1024)}]
    with pytest.raises(SpecError, match="512 KiB"):
        client.prepare(big_env)
    container["env"] = [{"name": "BIG", "value": "x" * (200 * 1024)}]
    assert client.prepare(manifest).job.name == "budget"
    # 300 KiB of command in each of the two replicas: the manifest as stored would be ~800 KiB.
    with pytest.raises(SpecError, match="512 KiB") as err:
        client.prepare(manifest, command="python -c pass " + "y" * (300 * 1024))
    assert "--command" in str(err.value)


def test_deep_or_wide_dict_specs_are_refused_not_a_crash():
    deep: dict = {}
    node = deep
    for _ in range(100_000):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(SpecError, match="nested too deeply"):
        TFJobClient("local").prepare(deep)
    with pytest.raises(SpecError, match="more than"):
        TFJobClient("local").prepare({"spec": list(range(200_000))})
