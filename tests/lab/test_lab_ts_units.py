"""The sidebar's pure TypeScript logic (SSE parsing, sorting, ages, counts), run by node's test runner."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

LABEXTENSION = Path(__file__).resolve().parents[2] / "labextension"


def test_lab_typescript_unit_tests_pass():
    assert shutil.which("npm"), "node/npm are needed to test the lab extension's sources"
    assert (LABEXTENSION / "node_modules").is_dir(), "run `npm ci` in labextension/ first (the Makefile does)"
    result = subprocess.run(["npm", "test", "--silent"], cwd=LABEXTENSION, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "# fail 0" in result.stdout and not re.search(r"^# pass 0$", result.stdout, re.M)
