"""The built wheel in a fresh virtual environment beside only JupyterLab (issue #17, "Packaging").

``pip install kubeflow-jupyter`` must be the whole Jupyter extension (magics, widgets, the server
and lab extensions, both backends' clients, the REST model client); TensorFlow is the
``[tensorflow]`` extra, and a feature that needs it says so in one line naming the command.

The wheel is built from this checkout (the lab extension is prebuilt in
kubeflow_jupyter/labextension) and installed with the dependencies from the package index, as a
user would: it needs the network (pip's cache keeps a rerun to about half a minute).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXTRA = "kubeflow-jupyter[tensorflow]"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv (no pip of its own: this interpreter's pip installs into it) with JupyterLab and the wheel."""
    root = tmp_path_factory.mktemp("wheel-venv")
    wheels = root / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("kubeflow_jupyter-*.whl")
    env_dir = root / "venv"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env_dir / "bin" / "python"),
            "install",
            "-q",
            "--no-compile",  # byte-compiling ~100 packages would be most of the time
            "--only-binary=:all:",
            "jupyterlab",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return env_dir


def run(venv: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    environ.update(PATH=f"{venv / 'bin'}:{os.environ['PATH']}", NO_COLOR="1", **env)
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=180, env=environ)
    done.stdout, done.stderr = _ANSI.sub("", done.stdout), _ANSI.sub("", done.stderr)
    return done


def test_the_core_install_is_the_whole_jupyter_extension_without_tensorflow(venv):
    code = (
        "import importlib.util, sys\n"
        "import kubeflow_jupyter.magics, kubeflow_jupyter.widgets, kubeflow_jupyter.serverext\n"
        "import kubeflow_jupyter.backends.kubernetes, kubeflow_jupyter.widgets.job_monitor\n"
        "import kubeflow_jupyter.widgets.model_query, kubeflow_jupyter.serving.client\n"
        "print([m for m in ('tensorflow', 'tensorflow_serving', 'grpc') if importlib.util.find_spec(m)])\n"
    )
    done = run(venv, "python", "-c", code)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


def test_jupyter_lists_both_extensions_enabled(venv):
    lab = run(venv, "jupyter", "labextension", "list")
    said = lab.stdout + lab.stderr
    assert re.search(r"kubeflow-jupyter v\S+ enabled OK \(python, kubeflow-jupyter\)", said), said
    server = run(venv, "jupyter", "server", "extension", "list")
    said = server.stdout + server.stderr
    assert re.search(r"kubeflow_jupyter enabled", said) and re.search(r"kubeflow_jupyter \S+ OK", said), said


def test_serve_without_the_extra_is_one_line_naming_it_exit_2(venv):
    done = run(venv, "kubeflow-jupyter", "serve", "/x", "--model-name", "m")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"kubeflow-jupyter: kubeflow-jupyter serve needs TensorFlow, which is not installed: pip install '{EXTRA}'"
    ]


def test_both_backends_clients_are_installed(venv, tmp_path):
    kube = run(venv, "kubeflow-jupyter", "list", "--backend", "kubernetes", KUBECONFIG=str(tmp_path / "none"))
    said = kube.stdout + kube.stderr
    assert "ModuleNotFoundError" not in said and "Traceback" not in said, said
    assert kube.returncode in (0, 1) and len(kube.stderr.strip().splitlines()) <= 1, said  # no cluster: one line
    local = run(venv, "kubeflow-jupyter", "list", KUBEFLOW_JUPYTER_HOME=str(tmp_path / "home"))
    assert local.returncode == 0, local.stderr


# A TF Serving stand-in in the standard library: what `%model predict --rest` sees of a real one.
FAKE_TF_SERVING = textwrap.dedent(
    """
    import base64, json, threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    def tensor(dtype, dims):
        return {"dtype": dtype, "tensor_shape": {"dim": [{"size": str(d)} for d in dims]}}

    METADATA = {
        "model_spec": {"name": "inception", "version": "1"},
        "metadata": {"signature_def": {"signature_def": {"predict_images": {
            "inputs": {"images": tensor("DT_STRING", [-1])},
            "outputs": {"classes": tensor("DT_STRING", [-1, 2]), "scores": tensor("DT_FLOAT", [-1, 2])},
            "method_name": "tensorflow/serving/predict",
        }}}},
    }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, doc):
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/v1/models/inception/metadata":
                return self.reply(200, METADATA)
            self.reply(404, {"error": "Could not find any versions of model " + self.path.split("/")[3]})

        def do_POST(self):
            doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            images = [base64.b64decode(i["b64"]) for i in doc["inputs"]["images"]]
            assert self.path == "/v1/models/inception:predict" and doc["signature_name"] == "predict_images"
            self.reply(200, {"outputs": {
                "classes": [["tabby", "tiger cat"] for _ in images],
                "scores": [[0.75, float(len(images[0]) % 7) / 100] for _ in images],
            }})

    def start():
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"127.0.0.1:{server.server_port}"
    """
)

NOTEBOOK_REST = textwrap.dedent(
    """
    import sys
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from fake_tf_serving import start

    server = start()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kubeflow_jupyter")
    with open("cat.png", "wb") as f:
        f.write(b"\\x89PNG\\r\\n\\x1a\\n" + b"pixels")
    with capture_output() as rest:
        ok = shell.run_cell(f"%model predict cat.png --rest --server {server}")
    with capture_output() as grpc:
        failed = shell.run_cell(f"%model predict cat.png --server {server}")
    print("REST", ok.error_in_exec, rest.outputs[0].data["text/plain"].replace("\\n", " | "), rest.stderr.strip())
    print("GRPC", (grpc.stdout + grpc.stderr).strip())
    print("TF", "tensorflow" in sys.modules)
    """
)


def test_model_predict_over_rest_needs_no_tensorflow_and_grpc_names_the_extra(venv, tmp_path):
    (tmp_path / "fake_tf_serving.py").write_text(FAKE_TF_SERVING)
    (tmp_path / "predict.py").write_text(NOTEBOOK_REST)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "predict.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    lines = dict(line.split(" ", 1) for line in done.stdout.strip().splitlines())
    assert done.returncode == 0 and set(lines) == {"REST", "GRPC", "TF"}, done.stdout + done.stderr
    assert lines["REST"].startswith("None cat.png: |   1. tabby") and "2. tiger cat" in lines["REST"], lines
    assert lines["GRPC"] == (
        "MissingExtra: the gRPC model client needs tensorflow-serving-api, which is not installed: "
        f"pip install '{EXTRA}', or use the REST API (%model ... --rest, PredictionClient(server, rest=True))"
    )
    assert lines["TF"] == "False"
