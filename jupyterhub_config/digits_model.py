"""The digits model the local stack serves: exported once, by the digits example's TFJob."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DIGITS_TFJOB = REPO / "examples" / "digits" / "tfjob.yaml"
JOB_NAME = "make-run-digits"
TRAINING_TIMEOUT = 1800.0  # seconds; a few minutes on two busy cores


class ModelUnavailable(Exception):
    """The model cannot be had; the message says why. The hub starts anyway."""


def latest_version(base_path: Path) -> Path | None:
    versions = [p for p in base_path.glob("*") if p.name.isdigit() and (p / "saved_model.pb").exists()]
    return max(versions, key=lambda p: int(p.name)) if versions else None


def digits_job(export_dir: Path) -> dict:
    """examples/digits/tfjob.yaml with the chief exporting to ``export_dir`` instead of ./models/digits."""
    manifest = yaml.safe_load(DIGITS_TFJOB.read_text())
    manifest["metadata"]["name"] = JOB_NAME
    (chief,) = manifest["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"]
    command = chief["command"]
    command[command.index("--export-dir") + 1] = str(export_dir)
    return manifest


def ensure_digits_export(base_path: Path) -> Path:
    """``base_path`` once it holds a SavedModel version, training one with the digits TFJob if needed."""
    if latest_version(base_path):
        return base_path
    if not DIGITS_TFJOB.exists():
        raise ModelUnavailable(f"no digits model under {base_path} and no {DIGITS_TFJOB} to train one")
    from kubeflow_jupyter.client import TFJobClient
    from kubeflow_jupyter.errors import JobNotFound, KubeflowJupyterError

    client = TFJobClient("local")
    print(f"training the digits model (TFJob {JOB_NAME}: chief, worker, PS); it is exported to {base_path}", flush=True)
    try:
        with contextlib.suppress(JobNotFound):
            client.delete(JOB_NAME)  # a leftover from an interrupted run
        client.submit(digits_job(base_path), workdir=REPO)
        last_state = [""]

        def report(snapshot) -> None:
            if snapshot.state != last_state[0]:
                last_state[0] = snapshot.state
                print(f"  {JOB_NAME}: {snapshot.state}", flush=True)

        client.wait(JOB_NAME, timeout=TRAINING_TIMEOUT, on_update=report)
    except KubeflowJupyterError as e:
        logs = "\n".join(client.logs(JOB_NAME, "chief-0", tail=20)) if _exists(client, JOB_NAME) else ""
        raise ModelUnavailable(f"training the digits model failed: {e}\n{logs}") from None
    finally:
        if _exists(client, JOB_NAME):
            client.delete(JOB_NAME)
    if not latest_version(base_path):
        raise ModelUnavailable(f"the digits TFJob succeeded but wrote no SavedModel under {base_path}")
    return base_path


def _exists(client, name: str) -> bool:
    from kubeflow_jupyter.errors import JobNotFound

    try:
        client.get(name)
    except JobNotFound:
        return False
    return True


if __name__ == "__main__":
    # `python -m jupyterhub_config.digits_model [DIR]`: export the model without starting the stack.
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / ".cache" / "models" / "digits"
    try:
        print(ensure_digits_export(target))
    except ModelUnavailable as e:
        raise SystemExit(f"error: {e}") from None
