"""The prebuilt extension ships in the wheel, and Jupyter sees both halves enabled and OK."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def jupyter(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return ANSI.sub("", result.stdout + result.stderr)


def test_lab_wheel_carries_the_prebuilt_extension_and_the_server_config(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("kubeflow_jupyter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = "kubeflow_jupyter-0.1.0.data/data/"
    labext = data + "share/jupyter/labextensions/kubeflow-jupyter/"
    assert labext + "package.json" in names
    assert labext + "install.json" in names
    assert labext + "static/style.js" in names
    assert any(re.fullmatch(re.escape(labext) + r"static/remoteEntry\.[0-9a-f]+\.js", n) for n in names)
    assert data + "etc/jupyter/jupyter_server_config.d/kubeflow_jupyter.json" in names
    # The one table of TensorFlow's start-up lines, which kubeflow_jupyter.logfold reads when installed.
    patterns = json.loads(zipfile.ZipFile(wheel).read("kubeflow_jupyter/tf_startup_patterns.json"))
    assert patterns == json.loads((REPO / "labextension" / "src" / "tfStartupPatterns.json").read_text())


def test_lab_jupyter_lists_both_extensions_enabled_and_ok():
    labextensions = jupyter("jupyterlab.labextensions", "list")
    assert re.search(r"kubeflow-jupyter v0\.1\.0 enabled\s+OK", labextensions), labextensions
    server = jupyter("jupyter_server.extension.serverextension", "list")
    assert re.search(r"kubeflow_jupyter enabled", server), server
    assert re.search(r"kubeflow_jupyter 0\.1\.0 OK", server), server
