"""The payload: --files rules, the local snapshot, the ConfigMap and pod parts, cell checks."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from pathlib import Path

import pytest

from kubeflow_jupyter.errors import KubeflowJupyterError, OptionError
from kubeflow_jupyter.runcell import (
    MAX_CONFIGMAP_BYTES,
    PayloadError,
    PayloadTooLarge,
    build_cell_payload,
    read_result,
)
from kubeflow_jupyter.runcell.payload import collect_files, configmap_key

KEY = re.compile(r"[-._a-zA-Z0-9]+")
RUNNER = {"_kfj/bootstrap.py", "_kfj/runner.py", "_kfj/frames.py", "_kfj/code.py", "_kfj/run.json"}
#: What write_to adds locally: the runner's compiled code (never in the ConfigMap).
CODE_CACHE = {"_kfj/runner.code", "_kfj/frames.code"}


@pytest.fixture
def notebook_dir(tmp_path) -> Path:
    root = tmp_path / "notebook"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "helpers.py").write_text("X = 1\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "weights.bin").write_bytes(bytes(range(256)))
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (root / "pkg" / "my_data file+.txt").write_text("ünïcode\n")
    return root


def test_payload_layout_and_run_json(notebook_dir):
    payload = build_cell_payload(
        "\n\n  # train\nimport helpers\nhelpers.X\n",
        files=["helpers.py", "pkg"],
        packages=["pandas>=2", "tqdm"],
        root=notebook_dir,
    )
    assert set(payload.files) == RUNNER | {
        "helpers.py",
        "pkg/__init__.py",
        "pkg/sub/weights.bin",
        "pkg/my_data file+.txt",
    }
    run = json.loads(payload.files["_kfj/run.json"])
    assert run == dict(payload.run)
    assert run["kind"] == "cell" and run["packages"] == ["pandas>=2", "tqdm"] and run["result_replica"] is None
    assert run["files"] == ["helpers.py", "pkg/__init__.py", "pkg/my_data file+.txt", "pkg/sub/weights.bin"]
    assert payload.files["_kfj/code.py"] == b"\n\n  # train\nimport helpers\nhelpers.X\n"
    assert payload.description == "# train"
    assert payload.total_bytes == sum(len(v) for v in payload.files.values())
    assert payload.packages == ["pandas>=2", "tqdm"] and payload.kind == "cell"


def test_argv():
    payload = build_cell_payload("1")
    assert payload.argv(sys.executable) == [sys.executable, "-u", "_kfj/bootstrap.py"]
    assert payload.argv(install_packages=False) == ["python", "-u", "_kfj/bootstrap.py", "--skip-packages"]
    assert payload.argv(payload_dir="/kfj/payload/") == [
        "python",
        "-u",
        "/kfj/payload/_kfj/bootstrap.py",
        "--copy-payload",
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../outside.py", "outside the notebook's directory"),
        ("/etc/hostname", "outside the notebook's directory"),
        ("missing.py", "no such file or directory"),
        ("", "an empty path"),
    ],
)
def test_files_outside_or_missing_are_refused(notebook_dir, path, message):
    (notebook_dir.parent / "outside.py").write_text("")
    with pytest.raises(PayloadError, match=message):
        collect_files([path], notebook_dir)


def test_absolute_paths_inside_and_dotdot_that_stays_inside_are_accepted(notebook_dir):
    found, _ = collect_files([str(notebook_dir / "helpers.py"), "pkg/../helpers.py"], notebook_dir)
    assert list(found) == ["helpers.py"]


def test_symlinks_leaving_the_tree_are_refused(notebook_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("token")
    (notebook_dir / "link.txt").symlink_to(secret)
    with pytest.raises(PayloadError, match=r"a symlink to .*outside"):
        collect_files(["link.txt"], notebook_dir)
    (notebook_dir / "pkg" / "escape").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(PayloadError, match="symlink leading outside"):
        collect_files(["pkg"], notebook_dir)


def test_symlinks_inside_the_tree_are_followed_once(notebook_dir):
    (notebook_dir / "alias.py").symlink_to(notebook_dir / "helpers.py")
    (notebook_dir / "pkg" / "loop").symlink_to(notebook_dir / "pkg", target_is_directory=True)
    found, _ = collect_files(["alias.py", "pkg"], notebook_dir)
    assert found["alias.py"] == b"X = 1\n"
    assert "pkg/__init__.py" in found and not any(p.count("loop/") > 1 for p in found)


def test_walk_skips_caches_and_reserved_dir_is_refused(notebook_dir):
    found, _ = collect_files(["."], notebook_dir)
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in found)
    (notebook_dir / "_kfj").mkdir()
    (notebook_dir / "_kfj" / "x.py").write_text("")
    with pytest.raises(PayloadError, match="_kfj/ is reserved"):
        collect_files(["_kfj"], notebook_dir)


def test_files_size_limit(notebook_dir):
    with pytest.raises(PayloadTooLarge, match="more than 0 MiB"):
        collect_files(["pkg"], notebook_dir, max_bytes=100)


def test_errors_are_option_errors_of_the_project():
    assert issubclass(PayloadError, OptionError) and issubclass(PayloadTooLarge, PayloadError)
    assert issubclass(PayloadError, KubeflowJupyterError)


def test_snapshot_is_independent_of_later_edits(notebook_dir, tmp_path):
    payload = build_cell_payload("1", files=["helpers.py"], root=notebook_dir)
    (notebook_dir / "helpers.py").write_text("X = 2\n")
    target = payload.write_to(tmp_path / "snap")
    assert (target / "helpers.py").read_text() == "X = 1\n"
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == sorted(
        RUNNER | CODE_CACHE | {"helpers.py"}
    )


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("helpers.py", "helpers.py"),
        ("pkg/sub/model.py", "pkg_2fsub_2fmodel.py"),
        ("my_file.py", "my_5ffile.py"),
        (".env", "_2eenv"),
        ("..hidden", "_2e.hidden"),
        ("ü b.txt", "_c3_bc_20b.txt"),
    ],
)
def test_configmap_keys_are_valid_and_distinct(path, key):
    assert configmap_key(path) == key and KEY.fullmatch(key) and not key.startswith("..")


def test_configmap_keys_never_collide():
    paths = ["a/b", "a_b", "a_2fb", "a.b", "a-b", "_kfj/run.json", "_kfj_2frun.json"]
    assert len({configmap_key(p) for p in paths}) == len(paths)


def test_configmap_carries_everything_and_items_restore_the_tree(notebook_dir, tmp_path, run_replica):
    (notebook_dir / "tool.sh").write_text("#!/bin/sh\n")
    (notebook_dir / "tool.sh").chmod(0o755)
    code = "import helpers, pathlib\n[helpers.X, pathlib.Path('pkg/sub/weights.bin').read_bytes()[:3].hex()]"
    payload = build_cell_payload(code, files=["helpers.py", "pkg", "tool.sh"], root=notebook_dir)
    owner = {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "run-1", "uid": "u-1"}}
    configmap, items = payload.to_configmap(
        "run-1-payload", "team-a", owner=owner, labels={"training.kubeflow.org/job-name": "run-1"}
    )
    assert configmap["metadata"] == {
        "name": "run-1-payload",
        "namespace": "team-a",
        "labels": {"training.kubeflow.org/job-name": "run-1"},
        "ownerReferences": [{"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "name": "run-1", "uid": "u-1"}],
    }
    assert (configmap["apiVersion"], configmap["kind"]) == ("v1", "ConfigMap")
    assert list(configmap["binaryData"]) == ["pkg_2fsub_2fweights.bin"]
    assert all(KEY.fullmatch(k) for k in [*configmap["data"], *configmap["binaryData"]])
    assert {i["path"] for i in items} == set(payload.files)
    assert [i for i in items if "mode" in i] == [{"key": "tool.sh", "path": "tool.sh", "mode": 0o755}]
    json.dumps(configmap)  # what is sent is plain JSON
    # What the kubelet does with the items: each key's content at its path.
    mount = tmp_path / "mount"
    for item in items:
        target = mount / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if item["key"] in configmap["data"]:
            target.write_text(configmap["data"][item["key"]], encoding="utf-8")
        else:
            target.write_bytes(base64.b64decode(configmap["binaryData"][item["key"]]))
    assert {p.relative_to(mount).as_posix(): p.read_bytes() for p in mount.rglob("*") if p.is_file()} == dict(
        payload.files
    )
    work = tmp_path / "work"
    work.mkdir()
    replica = run_replica(payload, directory=work, payload_dir=str(mount))
    assert replica.returncode == 0, replica.stderr
    assert read_result(replica.lines) == [1, "000102"]


def test_configmap_owner_reference_forms_and_missing_uid():
    payload = build_cell_payload("1")
    ref = {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "name": "j", "uid": "abc"}
    configmap, _ = payload.to_configmap("j", "ns", owner=ref)
    assert configmap["metadata"]["ownerReferences"] == [ref] and "binaryData" not in configmap
    with pytest.raises(ValueError, match="lacks uid"):
        payload.to_configmap(
            "j", "ns", owner={"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "j"}}
        )


def test_configmap_size_is_checked_before_anything_is_created(tmp_path):
    (tmp_path / "big.bin").write_bytes(os.urandom(700 * 1024))  # base64: ~933 KiB
    (tmp_path / "small.py").write_text("x = 1\n")
    payload = build_cell_payload("1", files=["big.bin", "small.py"], root=tmp_path)
    with pytest.raises(PayloadTooLarge, match=r"over the 900 KiB a ConfigMap carries \(largest: big.bin, small.py\)"):
        payload.to_configmap("j", "ns")
    (tmp_path / "big.bin").write_bytes(os.urandom(600 * 1024))
    configmap, _ = build_cell_payload("1", files=["big.bin"], root=tmp_path).to_configmap("j", "ns")
    assert len(json.dumps(configmap)) <= MAX_CONFIGMAP_BYTES


def test_pod_parts():
    payload = build_cell_payload("1")
    parts = payload.pod_parts("j-payload", install_packages=False)
    assert parts["workingDir"] == "/kfj/work"
    assert parts["command"] == ["python", "-u", "/kfj/payload/_kfj/bootstrap.py", "--copy-payload", "--skip-packages"]
    assert parts["volumes"][0]["configMap"] == {"name": "j-payload", "items": payload.configmap_items()}
    assert parts["volumes"][1] == {"name": "kfj-work", "emptyDir": {}}
    assert {m["mountPath"] for m in parts["volumeMounts"]} == {"/kfj/payload", "/kfj/work"}


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("x = 1\n%time y = 2\n", r"line 2: '%time y = 2' is IPython syntax"),
        ("\n\n!pip install x\n", r"line 3: '!pip install x' is IPython syntax"),
        ("files = !ls\n", r"line 1: 'files = !ls' is IPython syntax"),
        ("%%bash\necho hi\n", r"line 1: '%%bash' is IPython syntax"),
        ("import os\nos.path?\n", r"line 2: 'os.path\?' is IPython syntax"),
        ("x = (1,\n", r"line 1: '\(' was never closed"),
        ("   \n\n", "the cell is empty"),
    ],
)
def test_cells_that_are_not_plain_python_are_refused_with_the_line(code, message):
    with pytest.raises(PayloadError, match=message) as caught:
        build_cell_payload(code)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "code",
    [
        "s = '%not a magic'\nprint('!not shell?')\n",
        "x = 1  # what?\n\n   \n",
        "\n\nimport math\nmath.pi\n",
        "def f():\n    '''doc\n%also not a magic\n'''\n    return 1\n",
    ],
)
def test_plain_python_passes_the_check(code):
    assert build_cell_payload(code).run["kind"] == "cell"


def test_packages_must_be_requirements_not_pip_options():
    with pytest.raises(PayloadError, match="pip options are not allowed"):
        build_cell_payload("1", packages=["--index-url=http://evil"])
    with pytest.raises(PayloadError):
        build_cell_payload("1", packages=[" "])


def test_long_first_line_is_shortened_for_list_views():
    payload = build_cell_payload("value = " + "1 + " * 40 + "1")
    assert len(payload.description) == 80 and payload.description.endswith("…")


def test_missing_local_packages_are_named_not_installed():
    from kubeflow_jupyter.runcell import missing_local_packages

    assert missing_local_packages(["pytest>=1", "PyYAML", "ipython[all]", "no-such-dist-kfj==1.0", "./path"]) == [
        "no-such-dist-kfj==1.0",
        "./path",
    ]
