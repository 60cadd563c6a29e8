"""What `%load_ext kubeflow_jupyter` costs a notebook, against `import kubeflow.training`.

Anchor: the Kubeflow training SDK 1.9 (`kubeflow-training==1.9.*`, what a notebook user
imports to create TFJobs with Kubeflow's own client), installed by this script into a
throwaway venv under .cache/ (never into the project's venv) and imported in the same run.

Each measurement runs in a fresh interpreter and times only the statement a user runs
in a cell: for ours, an IPython shell already exists (a kernel has one) and we time
`%load_ext kubeflow_jupyter`; for the anchor we time `import kubeflow.training`.
Prints the medians and the ratio; the goal is ≥ 10x cheaper.

    .venv/bin/python bench/bench_load_ext.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANCHOR_VENV = REPO / ".cache" / "bench-kubeflow-training-1.9"
ANCHOR_REQUIREMENT = "kubeflow-training==1.9.*"
GOAL = 10.0

OURS = """
import time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
start = time.perf_counter()
shell.run_line_magic("load_ext", "kubeflow_jupyter")
print(time.perf_counter() - start)
"""

# For the record: %load_ext defers the client/domain imports to the first %tfjob, so
# also time load_ext plus a first `%tfjob list` (local backend, empty store).
OURS_FIRST_USE = OURS.replace(
    'shell.run_line_magic("load_ext", "kubeflow_jupyter")',
    'shell.run_line_magic("load_ext", "kubeflow_jupyter"); shell.run_line_magic("tfjob", "list")',
)

ANCHOR = """
import time
start = time.perf_counter()
import kubeflow.training
print(time.perf_counter() - start)
"""


def anchor_python() -> Path:
    """The throwaway venv's interpreter, with the SDK installed (created on first run)."""
    python = ANCHOR_VENV / "bin" / "python"
    marker = ANCHOR_VENV / ".installed"
    if not marker.exists():
        print(f"installing {ANCHOR_REQUIREMENT} into {ANCHOR_VENV} (once) ...", flush=True)
        venv.create(ANCHOR_VENV, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", ANCHOR_REQUIREMENT],
            check=True,
        )
        marker.touch()
    return python


def time_once(python: Path | str, code: str) -> float:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONDONTWRITEBYTECODE="0")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, env=env, cwd=REPO)
    return float(out.stdout.strip().splitlines()[-1])


def median_seconds(python: Path | str, code: str, runs: int) -> float:
    time_once(python, code)  # warm the OS file cache and write .pyc files: we measure imports, not disk
    return statistics.median(time_once(python, code) for _ in range(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    anchor = anchor_python()
    with tempfile.TemporaryDirectory() as home:  # an empty local store for `%tfjob list`
        os.environ.update(KUBEFLOW_JUPYTER_HOME=home, KUBEFLOW_JUPYTER_BACKEND="local")
        ours_s = median_seconds(sys.executable, OURS, args.runs)
        first_use_s = median_seconds(sys.executable, OURS_FIRST_USE, args.runs)
    anchor_s = median_seconds(anchor, ANCHOR, args.runs)
    ratio = anchor_s / ours_s
    print(f"%load_ext kubeflow_jupyter              median {ours_s * 1000:8.1f} ms  ({args.runs} fresh interpreters)")
    print(
        f"  + first %tfjob list (for the record)  median {first_use_s * 1000:8.1f} ms  "
        f"({anchor_s / first_use_s:.1f}x cheaper than the anchor)"
    )
    print(f"import kubeflow.training (1.9 SDK)      median {anchor_s * 1000:8.1f} ms  ({args.runs} fresh interpreters)")
    print(f"ratio: %load_ext is {ratio:.1f}x cheaper (goal >= {GOAL:g}x) -> {'OK' if ratio >= GOAL else 'BELOW GOAL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
