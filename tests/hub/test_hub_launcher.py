"""run_local.py and digits_model.py without starting processes: what they decide and refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_support import REPO

from jupyterhub_config import digits_model, run_local
from kubeflow_jupyter.client import TFJobClient


def test_hub_launcher_refuses_to_start_without_the_proxy(monkeypatch):
    monkeypatch.setenv("HUB_PROXY_COMMAND", "/nonexistent/configurable-http-proxy")
    with pytest.raises(run_local.LaunchError, match="make proxy"):
        run_local.check_proxy()


def test_hub_digits_job_exports_where_the_launcher_serves_from(tmp_path):
    export_dir = tmp_path / "models" / "digits"
    manifest = digits_model.digits_job(export_dir)
    chief = manifest["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]
    assert chief["command"][chief["command"].index("--export-dir") + 1] == str(export_dir)
    # The rewritten job is still a valid TFJob for the client (parsed, validated, nothing created).
    parsed = TFJobClient("local").prepare(manifest)
    assert parsed.job.name == digits_model.JOB_NAME
    assert {r.lower() for r in manifest["spec"]["tfReplicaSpecs"]} == {"chief", "worker", "ps"}


def test_hub_existing_export_is_served_without_training(tmp_path):
    version = tmp_path / "3"
    version.mkdir()
    (version / "saved_model.pb").write_bytes(b"")
    (tmp_path / "not-a-version").mkdir()
    assert digits_model.latest_version(tmp_path) == version
    assert digits_model.ensure_digits_export(tmp_path) == tmp_path
    assert TFJobClient("local").list() == []  # nothing was submitted


def test_hub_workspace_copies_examples_and_keeps_user_edits(tmp_path, monkeypatch):
    import os
    import pwd

    me = pwd.getpwuid(os.geteuid())
    account = pwd.struct_passwd((me.pw_name, "x", me.pw_uid, me.pw_gid, "", str(tmp_path), "/bin/sh"))
    edited = tmp_path / run_local.WORKSPACE_NAME / "examples" / "tf_sample.yaml"
    edited.parent.mkdir(parents=True)
    edited.write_text("# my edits\n")
    workspace = run_local.ensure_workspace(account)
    assert edited.read_text() == "# my edits\n"
    copied = {p.relative_to(workspace / "examples") for p in (workspace / "examples").rglob("*") if p.is_file()}
    originals = {p.relative_to(REPO / "examples") for p in (REPO / "examples").rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}
    assert copied == originals
    assert all(Path(p).stat().st_uid == me.pw_uid for p in workspace.rglob("*"))
