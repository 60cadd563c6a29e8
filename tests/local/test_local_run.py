"""Running code on the replicas of a local TFJob (runcell wired into the client and the local
backend): the result comes back from the result replica's log, errors name the replica."""

from __future__ import annotations

import json

import pytest

from kubeflow_jupyter.client import TFJobClient
from kubeflow_jupyter.errors import JobNotFound
from kubeflow_jupyter.runcell import PayloadError, RemoteError

TF_CONFIG_CELL = """\
import json, os
config = json.loads(os.environ["TF_CONFIG"])
print("running", config["task"])
{"task": config["task"], "cluster": sorted(config["cluster"]), "workers": len(config["cluster"]["worker"])}
"""


def test_a_cell_on_chief_two_workers_and_a_ps_returns_the_chiefs_value(client, workdir):
    job = client.run_cell(TF_CONFIG_CELL, chief=True, workers=2, ps=1, root=workdir, timeout=120)
    value = job.result()
    assert value == {"task": {"type": "chief", "index": 0}, "cluster": ["chief", "ps", "worker"], "workers": 2}
    assert job.state == "Succeeded"
    assert [r.id for r in job.status.replicas] == ["chief-0", "ps-0", "worker-0", "worker-1"]
    # A fresh client and handle (another kernel): the same value, read from the log.
    assert TFJobClient("local").result(job.name) == value
    from kubeflow_jupyter.handle import TFJobHandle

    assert TFJobHandle(TFJobClient("local"), job.name).result(timeout=30) == value
    # The frames are in the log, the user's output too; the manifest is a TFJob like a submitted one.
    log = list(client.logs(job.name, "chief-0"))
    assert "running {'type': 'chief', 'index': 0}" in log
    manifest = client.manifest(job.name)
    specs = manifest["spec"]["tfReplicaSpecs"]
    assert sorted(specs) == ["Chief", "PS", "Worker"]
    assert {s["restartPolicy"] for s in specs.values()} == {"Never"}
    assert manifest["metadata"]["annotations"]["kubeflow-jupyter.org/description"] == "import json, os"
    assert job.name.startswith("run-")


def test_a_cell_raising_on_worker_1_only_fails_naming_it(client, workdir):
    code = (
        "import json, os, time\n"
        "task = json.loads(os.environ['TF_CONFIG'])['task']\n"
        "def check(task):\n"
        "    if task == {'type': 'worker', 'index': 1}:\n"
        "        raise ValueError('bad shard 7')\n"
        "check(task)\n"
        "time.sleep(2)\n"
        "task\n"
    )
    job = client.run_cell(code, workers=3, root=workdir, timeout=120)
    assert job.state == "Failed"
    with pytest.raises(RemoteError) as caught:
        job.result()
    error = caught.value
    assert str(error) == "worker-1 raised ValueError: bad shard 7"
    assert isinstance(error, ValueError) and error.replica == "worker-1"
    rendered = "\n".join(error._render_traceback_())
    assert 'File "<cell>", line 5, in check' in rendered and "raise ValueError('bad shard 7')" in rendered
    assert "bootstrap" not in rendered  # the runner's frames are not the user's


def test_files_ship_a_helper_module_and_the_snapshot_is_taken_at_submit(client, workdir):
    (workdir / "helpers").mkdir()
    (workdir / "helpers" / "__init__.py").write_text("")
    (workdir / "helpers" / "maths.py").write_text("def triple(x):\n    return 3 * x\n")
    job = client.run_cell(
        "import time\ntime.sleep(1)\nfrom helpers.maths import triple\ntriple(14)\n",
        files=["helpers"],
        root=workdir,
        wait=False,
    )
    (workdir / "helpers" / "maths.py").write_text("def triple(x):\n    return -1\n")  # edited while it runs
    assert job.result(timeout=120) == 42


def test_run_a_function_with_arguments(client, workdir):
    def scale(x, factor=2):
        import os

        return {"value": x * factor, "cwd_has_runner": os.path.isdir("_kfj")}

    job = TFJobClient("local").run(scale, 10, workers=1, factor=3, root=workdir, timeout=120)
    assert job.result() == {"value": 30, "cwd_has_runner": True}
    assert client.get(job.name).description == "scale(10, factor=3)"


def test_the_result_outlives_the_client_and_the_store_keeps_the_snapshot(isolated_home, workdir):
    name = TFJobClient("local").run_cell("sum(range(10))", name="kept-run", root=workdir, timeout=120).name
    assert name == "kept-run"
    payload = isolated_home / "namespaces" / "default" / name / "payload"
    assert (payload / "_kfj" / "bootstrap.py").is_file() and (payload / "_kfj" / "code.py").is_file()
    assert TFJobClient("local").result(name) == 45
    TFJobClient("local").delete(name)
    assert not payload.exists()
    with pytest.raises(JobNotFound):
        TFJobClient("local").result(name)


def test_dry_run_creates_nothing(client, workdir, isolated_home):
    sub = client.run_cell("1 + 1", chief=True, workers=1, dry_run=True, root=workdir)
    assert sub.dry_run and sub.objects == []
    command = sub.manifest["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["command"]
    assert command[1:] == ["-u", "_kfj/bootstrap.py", "--skip-packages"]
    assert client.list() == []
    root = isolated_home / "namespaces" / "default"
    entries = [p.name for p in root.iterdir()] if root.exists() else []
    assert not [n for n in entries if not n.startswith(".") or n.startswith(".creating")]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"code": "%time x = 1\nx"}, "line 1: '%time x = 1' is IPython syntax"),
        ({"code": "!ls"}, "IPython syntax"),
        ({"code": "1", "packages": ["surely-not-installed-pkg-kfj"]}, "--packages surely-not-installed-pkg-kfj"),
        ({"code": "1", "files": ["missing.py"]}, "--files missing.py: no such file"),
        ({"code": "1", "workers": 0}, "a run needs a chief or at least one worker"),
        ({"code": "1", "env": ["NOEQUALS"]}, "give KEY=VALUE"),
    ],
)
def test_refusals_are_one_line_and_create_nothing(client, workdir, kwargs, needle):
    code = kwargs.pop("code")
    with pytest.raises(Exception) as caught:
        client.run_cell(code, root=workdir, **kwargs)
    message = str(caught.value)
    assert needle in message and "\n" not in message
    assert client.list() == []


def test_a_lambda_is_refused_at_submit(client, workdir):
    with pytest.raises(PayloadError, match="lambda"):
        client.run(lambda: 1, root=workdir)
    assert client.list() == []


def test_list_wide_shows_the_description(client, workdir):
    from kubeflow_jupyter.verbs import list_text

    client.run_cell("import math\nmath.pi", name="described", root=workdir, timeout=120)
    text = list_text(client.list(), "wide")
    assert "DESCRIPTION" in text.splitlines()[0] and "import math" in text
    assert json.loads(json.dumps(client.get("described").to_dict()))["description"] == "import math"
