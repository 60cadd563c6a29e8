"""run_local.py and digits_model.py without starting processes: what they decide and refuse."""

from __future__ import annotations

import io
import os
import subprocess
import sys
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
    originals = {
        p.relative_to(REPO / "examples")
        for p in (REPO / "examples").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert copied == originals
    assert all(Path(p).stat().st_uid == me.pw_uid for p in workspace.rglob("*"))


# What `make run` printed before the model server's own lines: TensorFlow 2.21's start-up notices
# (twice, as TensorFlow logs them), and ones other machines add (CPU features, duplicate registrations).
TENSORFLOW_START_UP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796099812.807002   22164 port.cc:153] oneDNN custom operations are on. You may see slightly different \
numerical results due to floating-point round-off errors from different computation orders. To turn them off, set \
the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1796099812.807302   22164 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796099814.520157   22164 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
E0000 00:00:1796099815.608110   22164 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call \
to cuInit: UNKNOWN ERROR (303)
I0000 00:00:1733212345.123456   22164 cpu_feature_guard.cc:210] This TensorFlow binary is optimized to use available \
CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the appropriate \
compiler flags.
E0000 00:00:1733212345.223456   22164 computation_placer.cc:177] computation placer already registered. Please check \
linkage and avoid linking the same target more than once.
"""
SERVER_SAYS = """\
model 'digits': serving version 1 from /models/digits/1 (signatures: predict_images, serving_default)
E0000 00:00:1796099816.000000   22164 saved_model_reader.cc:83] Reading SavedModel failed: not found
Traceback (most recent call last):
OSError: [Errno 98] Address already in use
"""


def relayed(text: str) -> str:
    target = io.StringIO()
    run_local.forward_without_tensorflow_notices(io.BytesIO(text.encode()), target)
    return target.getvalue()


def test_hub_model_server_output_loses_tensorflow_start_up_notices_only():
    lines = SERVER_SAYS.splitlines(keepends=True)
    mixed = TENSORFLOW_START_UP + lines[0] + TENSORFLOW_START_UP + "".join(lines[1:])
    assert relayed(mixed) == SERVER_SAYS


def test_hub_real_tensorflow_start_up_is_hidden():
    probe = subprocess.Popen(
        [sys.executable, "-c", "import sys, tensorflow as tf; tf.constant(1) + 1; print('ready', file=sys.stderr)"],
        stderr=subprocess.PIPE,
    )
    target = io.StringIO()
    run_local.forward_without_tensorflow_notices(probe.stderr, target)
    assert probe.wait() == 0
    out = target.getvalue()
    assert out.endswith("ready\n")
    for notice in ("absl::InitializeLog", "oneDNN", "cuda drivers", "cuInit"):
        assert notice not in out, out


def test_hub_launcher_children_have_their_own_session():
    """Ctrl-C reaches the launcher only; it stops each child once (a hub hit twice stopped its servers twice)."""
    stack = run_local.Stack()
    child = stack.start("probe", [sys.executable, "-c", "import os; print(os.getsid(0))"], stdout=subprocess.PIPE)
    out, _ = child.communicate(timeout=60)
    stack.stop()
    assert int(out) == child.pid != os.getsid(0)
