"""``kubeflow-jupyter serve`` as a user runs it, and the import-weight rule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "kubeflow-jupyter")


def test_serve_command_listens_prints_what_it_serves_and_stops_on_sigterm(model_base, images):
    from kubeflow_jupyter.serving.inception import classify_images

    process = subprocess.Popen(
        [CLI, "serve", str(model_base), "--model-name", "inception", "--port", "0", "--rest-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "gRPC on" in line:
                break
        said = "".join(lines)
        assert "serving model 'inception'" in said and "versions 1" in said, said
        grpc_port = said.split("gRPC on 127.0.0.1:")[1].split(",")[0]
        rest_port = said.split("REST on http://127.0.0.1:")[1].split("/")[0]
        assert (
            classify_images(images["red.jpg"], server=f"127.0.0.1:{grpc_port}")[0]
            == classify_images(images["red.jpg"], server=f"127.0.0.1:{rest_port}", rest=True)[0]
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_with_a_missing_directory_is_one_clear_error(tmp_path):
    result = subprocess.run(
        [CLI, "serve", str(tmp_path / "nope"), "--model-name", "m"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "MODEL_BASE_PATH" in result.stderr and "no such directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_requires_a_model_name(tmp_path):
    result = subprocess.run([CLI, "serve", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--model-name" in result.stderr


def test_importing_the_front_ends_imports_nothing_heavy():
    code = (
        "import sys, kubeflow_jupyter.serving, kubeflow_jupyter.serving.cli, kubeflow_jupyter.magics.model, "
        "kubeflow_jupyter.serving.errors, kubeflow_jupyter.serving.display, kubeflow_jupyter.serving.background\n"
        "print(sorted(m for m in ('tensorflow', 'grpc', 'ipywidgets', 'kubernetes', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_background_server_goes_away_with_a_killed_parent(model_base, tmp_path):
    """%model serve's server watches the kernel: SIGKILL (no atexit) still leaves nothing running."""
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys\n"
        "from kubeflow_jupyter.serving.background import start_server\n"
        f"server = start_server({str(model_base)!r}, 'inception', port=0, rest_port=None)\n"
        "print(server.process.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        os.kill(child, 0)  # running
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            if _is_zombie(child):
                break
            time.sleep(0.2)
        else:
            os.kill(child, signal.SIGKILL)
            raise AssertionError("the server outlived its parent")
    finally:
        if parent.poll() is None:
            parent.kill()


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except OSError:
        return False
