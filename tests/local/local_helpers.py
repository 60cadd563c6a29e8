"""Helpers for the local backend's tests: process inspection, waiting for a state.

Manifests and the CLI runners every folder uses are in tests/support.

A module of its own (not conftest.py): several test folders have a conftest.py, and
``from conftest import ...`` would pick whichever was imported first."""

from __future__ import annotations

import os
import time
from pathlib import Path

from kubeflow_jupyter.client import TFJobClient
from kubeflow_jupyter.tfjob.status import JobSnapshot


def processes_of(home: Path) -> list[tuple[int, str]]:
    """Live (non-zombie) processes started for this test's $KUBEFLOW_JUPYTER_HOME, other than this one."""
    marker = f"KUBEFLOW_JUPYTER_HOME={home}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            if stat[stat.rfind(")") + 2 :].split()[0] in ("Z", "X"):
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in env:
            found.append((int(entry), cmd))
    return found


def leftover_processes(home: Path, grace: float = 5.0) -> list[tuple[int, str]]:
    """Processes of this test still alive after ``grace`` s: a finished job's supervisor exits just
    after writing the final status, so it may take a moment to go."""
    deadline = time.monotonic() + grace
    while (found := processes_of(home)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def wait_until(client: TFJobClient, name: str, predicate, timeout: float = 60) -> JobSnapshot:
    """The first snapshot that satisfies ``predicate`` (watch is push-driven); fails after ``timeout``."""
    for snap in client.watch(name, timeout=timeout):
        if predicate(snap):
            return snap
    raise AssertionError(f"{name}: condition not reached; last state {client.get(name).to_dict()}")
