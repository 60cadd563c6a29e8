"""Issue 17's sidebar findings through the REST API: the shipped examples submit from the file
browser (jobs run in the Jupyter root), the submit dialog's dry run, --validate, and the
TensorFlow start-up lines the log pane folds recognised as kubeflow_jupyter.logfold does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kubeflow_jupyter import logfold

pytestmark = pytest.mark.timeout(420)

REPO = Path(__file__).resolve().parents[2]
LABEXTENSION = REPO / "labextension"
SAMPLE = LABEXTENSION / "src" / "__tests__" / "tf_startup_sample.log"
PATTERNS = LABEXTENSION / "src" / "tfStartupPatterns.json"


@pytest.fixture
def jp_root_dir(tmp_path):
    """The server root holds the repository's examples/ as the repository does (the Jupyter root
    at the repository root), so that the shipped YAML files' relative paths mean what they say."""
    root = tmp_path / "root"
    shutil.copytree(
        REPO / "examples", root / "examples", ignore=shutil.ignore_patterns("__pycache__", "*.ipynb", "models")
    )
    return root


async def post(jp_fetch, body: dict) -> tuple[int, dict]:
    response = await jp_fetch(
        "kubeflow-jupyter",
        "api",
        "jobs",
        method="POST",
        body=json.dumps(body),
        headers={"Content-Type": "application/json"},
        raise_error=False,
    )
    return response.code, json.loads(response.body) if response.body else {}


async def get(jp_fetch, *parts: str) -> tuple[int, dict]:
    response = await jp_fetch("kubeflow-jupyter", "api", *parts, raise_error=False)
    return response.code, json.loads(response.body) if response.body else {}


async def finished(open_stream, name: str, timeout: float) -> dict:
    stream = open_stream("events")

    def done(event, data):
        jobs = data.get("jobs", [data]) if isinstance(data, dict) else []
        return event in ("job", "jobs") and any(
            j.get("name") == name and j.get("state") in ("Succeeded", "Failed") for j in jobs
        )

    await stream.until(done, timeout=timeout)
    await stream.close()


@pytest.mark.parametrize(
    "path, name, chief",
    [("examples/tf_sample.yaml", "example-job", "master-0"), ("examples/digits/tfjob.yaml", "digits", "chief-0")],
)
async def test_lab_shipped_examples_submitted_from_the_sidebar_succeed(
    jp_fetch, jp_root_dir, open_stream, path, name, chief
):
    code, plan = await post(jp_fetch, {"path": path, "dry_run": True})
    assert code == 200, plan
    assert plan["name"] == name and plan["workdir"] == str(Path(jp_root_dir).resolve())
    assert plan["entrypoint"] == [] and plan["problems"] == [] and plan["suggestedCommand"] is None
    code, listing = await get(jp_fetch, "jobs")
    assert listing["jobs"] == []  # a dry run creates nothing

    code, body = await post(jp_fetch, {"path": path})
    assert code == 201, body
    await finished(open_stream, name, timeout=360)
    code, job = await get(jp_fetch, "jobs", name)
    if job["state"] != "Succeeded":
        code, logs = await get(jp_fetch, "jobs", name, "logs")
        pytest.fail(f"{name}: {job['state']} {job['message']}\n" + "\n".join(logs.get("lines", [])[-30:]))
    assert job["counts"]["failed"] == 0
    assert any(r["id"] == chief and r["phase"] == "Succeeded" for r in job["replicas"])
    if name == "digits":  # the chief exported into the root's models/, as the CLI from the repository root would
        assert any((Path(jp_root_dir) / "models" / "digits").iterdir())


async def test_lab_legacy_yaml_dry_run_names_what_would_run_and_suggests_the_command(jp_fetch, jp_root_dir):
    code, plan = await post(jp_fetch, {"path": "examples/tfjob-legacy.yaml", "dry_run": True})
    assert code == 200, plan
    assert plan["name"] == "example-job"
    assert plan["replicas"] == {"Master": 1, "Worker": 1, "PS": 2}
    assert plan["workdir"] == str(Path(jp_root_dir).resolve())
    assert plan["entrypoint"] == ["Master", "Worker"]  # no command: the image's entrypoint
    assert plan["suggestedCommand"] == "python examples/tf_sample/tf_sample.py"
    assert any("entrypoint" in p["message"] for p in plan["problems"])  # the local backend cannot run it
    assert any("v1alpha1" in n for n in plan["notices"])

    # With the command the dialog sends, the dry run finds nothing wrong; still nothing created.
    code, plan = await post(
        jp_fetch, {"path": "examples/tfjob-legacy.yaml", "dry_run": True, "command": plan["suggestedCommand"]}
    )
    assert code == 200 and plan["problems"] == [] and plan["entrypoint"] == []
    assert (await get(jp_fetch, "jobs"))[1]["jobs"] == []


async def test_lab_legacy_yaml_with_the_command_runs_to_succeeded(jp_fetch, open_stream):
    code, body = await post(
        jp_fetch, {"path": "examples/tfjob-legacy.yaml", "command": "python examples/tf_sample/tf_sample.py"}
    )
    assert code == 201, body
    await finished(open_stream, "example-job", timeout=360)
    code, job = await get(jp_fetch, "jobs", "example-job")
    assert job["state"] == "Succeeded", job


async def test_lab_unknown_field_refused_by_default_and_dropped_with_validate_warn(jp_fetch, jp_root_dir):
    text = (Path(jp_root_dir) / "examples" / "tf_sample.yaml").read_text().replace("replicas: 2", "replcas: 2")
    (Path(jp_root_dir) / "typo.yaml").write_text(text)

    code, body = await post(jp_fetch, {"path": "typo.yaml"})
    assert code == 400, body
    assert [p["path"] for p in body["problems"]] == ["spec.tfReplicaSpecs.PS.replcas"]
    assert "did you mean 'replicas'" in body["problems"][0]["message"]
    assert (await get(jp_fetch, "jobs"))[1]["jobs"] == []  # nothing created

    code, body = await post(jp_fetch, {"path": "typo.yaml", "validate": "strict", "dry_run": True})
    assert code == 400 and body["problems"][0]["path"] == "spec.tfReplicaSpecs.PS.replcas"

    code, plan = await post(jp_fetch, {"path": "typo.yaml", "validate": "warn", "dry_run": True})
    assert code == 200, plan
    assert plan["replicas"]["PS"] == 1  # the misspelt count was dropped: the default
    assert any("replcas" in w for w in plan["warnings"])

    code, plan = await post(jp_fetch, {"path": "typo.yaml", "validate": "ignore", "dry_run": True})
    assert code == 200 and plan["warnings"] == []

    code, body = await post(jp_fetch, {"path": "typo.yaml", "validate": "warn", "command": "python -c pass"})
    assert code == 201, body
    assert any("replcas" in w for w in body["warnings"])
    assert body["job"]["counts"]["total"] == 3


@pytest.mark.parametrize(
    "body, needles",
    [
        ({"path": "examples/tf_sample.yaml", "validate": "loose"}, ["validate", "strict, warn, ignore", "loose"]),
        ({"path": "examples/tf_sample.yaml", "validate": 1}, ["validate", "string"]),
        ({"path": "examples/tf_sample.yaml", "dry_run": "yes"}, ["dry_run", "true or false"]),
    ],
)
async def test_lab_bad_validate_or_dry_run_is_400_naming_the_field(jp_fetch, body, needles):
    code, reply = await post(jp_fetch, body)
    assert code == 400
    for needle in needles:
        assert needle in reply["message"]
    assert (await get(jp_fetch, "jobs"))[1]["jobs"] == []


# -- the TensorFlow start-up lines: one list of patterns, the same answer in Python and TypeScript ----
def sample_lines() -> list[str]:
    return [line for line in SAMPLE.read_text().split("\n") if line != ""]


def test_lab_startup_sample_has_both_kinds_of_line():
    kinds = [logfold.is_startup_line(line) for line in sample_lines()]
    assert kinds.count(True) >= 10 and kinds.count(False) >= 8


def test_lab_log_pane_folds_the_same_startup_lines_as_python():
    assert shutil.which("npm"), "node/npm are needed to test the lab extension's sources"
    result = subprocess.run(
        ["npm", "test", "--silent"],
        cwd=LABEXTENSION,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "KFJ_PRINT_STARTUP_CLASSIFICATION": "1"},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    printed = [line for line in result.stdout.splitlines() if "KFJ-CLASSIFICATION " in line]
    assert printed, result.stdout[-2000:]
    typescript = json.loads(printed[0].split("KFJ-CLASSIFICATION ", 1)[1])
    python = [logfold.is_startup_line(line) for line in sample_lines()]
    assert typescript == python
