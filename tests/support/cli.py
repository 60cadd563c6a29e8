"""The ``kubeflow-jupyter`` CLI, two ways: ``main()`` in this process, or a process of its own."""

from __future__ import annotations

import subprocess
import sys

from kubeflow_jupyter import cli
from support.paths import REPO


def cli_in_process(capsys, *argv: str) -> tuple[int, str, str]:
    """``main(argv)`` in the test's process: (exit code, stdout, stderr) as captured by ``capsys``."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_subprocess(*argv: str, text: bool = True, timeout: float = 240, **run_options) -> subprocess.CompletedProcess:
    """``python -m kubeflow_jupyter.cli ARGV`` as a separate process (another process than the test's
    own client), run from the repository root unless ``cwd`` says otherwise; output captured.
    ``run_options`` go to :func:`subprocess.run` (``input``, ``stdin``, ``env``, ``cwd``, ...)."""
    run_options.setdefault("cwd", REPO)
    return subprocess.run(
        [sys.executable, "-m", "kubeflow_jupyter.cli", *argv],
        capture_output=True,
        text=text,
        timeout=timeout,
        **run_options,
    )
