"""The sidebar's pure TypeScript logic (SSE parsing, sorting, ages, counts), run by node's test runner,
and the facts it shares with the Python side (the age format, the state vocabulary) checked against Python."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kubeflow_jupyter.tfjob import status

LABEXTENSION = Path(__file__).resolve().parents[2] / "labextension"
#: Seconds and the age each reads as; src/__tests__/jobs.test.ts checks the TypeScript side against it.
DURATIONS = json.loads((LABEXTENSION / "src" / "__tests__" / "durations.json").read_text())["durations"]


@pytest.fixture(scope="module")
def npm_test():
    """``npm test``'s result; it also compiles src/jobs.ts to lib-test/ for the checks below."""
    assert shutil.which("npm"), "node/npm are needed to test the lab extension's sources"
    assert (LABEXTENSION / "node_modules").is_dir(), "run `npm ci` in labextension/ first (the Makefile does)"
    return subprocess.run(["npm", "test", "--silent"], cwd=LABEXTENSION, capture_output=True, text=True, timeout=240)


def node_json(script: str, *args: str):
    """What a node script prints as JSON; `jobs` is the compiled src/jobs.ts."""
    prelude = "const jobs = require('./lib-test/jobs.js');\n"
    result = subprocess.run(
        ["node", "-e", prelude + script, *args], cwd=LABEXTENSION, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


def test_lab_typescript_unit_tests_pass(npm_test):
    assert npm_test.returncode == 0, npm_test.stdout[-4000:] + npm_test.stderr[-4000:]
    assert "# fail 0" in npm_test.stdout and not re.search(r"^# pass 0$", npm_test.stdout, re.M)


def test_lab_shared_age_table_is_what_python_writes():
    assert len(DURATIONS) >= 10
    assert [status.format_duration(seconds) for seconds, _ in DURATIONS] == [age for _, age in DURATIONS]


def test_lab_ages_in_the_sidebar_read_as_python_writes_them(npm_test):
    now = datetime(2026, 1, 2, tzinfo=UTC)
    seconds = [0, 7, 59.5, 61, 119, 599, 601, 3599, 3601, 3660, 9000, 35940, 36060, 86399, 86401, 1e7, -3]
    created = [(now - timedelta(seconds=s)).isoformat().replace("+00:00", "Z") for s in seconds]
    shown = node_json(
        "const [created, now] = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(created.map(c => jobs.formatAge(c, now))))",
        json.dumps([created, now.timestamp() * 1000]),
    )
    assert shown == [status.age(c, now) for c in created]
    assert shown == [status.format_duration(s) for s in seconds]


def test_lab_badges_cover_every_state_and_phase_python_sends(npm_test):
    badges = node_json("console.log(JSON.stringify(Object.fromEntries(jobs.BADGES)))")
    job_states = {
        status.CREATED,
        status.RUNNING,
        status.RESTARTING,
        status.SUCCEEDED,
        status.FAILED,
        status.SUSPENDED,
        status.UNKNOWN,
        status.PENDING,
    }
    assert set(badges) == job_states | set(status.REPLICA_PHASES)
    waiting = badges[status.PENDING]
    for phase in status.REPLICA_PHASES:
        # an ended replica never looks like one still to come, nor like one still running
        assert (badges[phase] in (waiting, badges[status.POD_RUNNING])) == (phase not in status.ENDED_PHASES), phase
