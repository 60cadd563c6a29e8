"""Process bookkeeping for the local runner: identity, liveness, process groups, ports.

A pid alone is not an identity (pids are reused), so every pid the runner records
is paired with the process's start time from ``/proc/<pid>/stat``; a process
only counts as "ours" when both match. Zombies count as dead: the supervisor
is re-parented to PID 1 and, where PID 1 does not reap, lingers as a zombie.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from dataclasses import dataclass

STOP_GRACE_SECONDS = 3.0
#: Set in every replica's environment to its job's uid: whatever a replica starts inherits it.
JOB_MARKER = "KUBEFLOW_JUPYTER_JOB_UID"
_PR_SET_PDEATHSIG = 1


def killed_with_parent():
    """A ``preexec_fn`` that has the kernel SIGKILL the child when the process that started it dies.

    The supervisor records each replica's pid right after starting it; a supervisor
    killed in between would leave an unrecorded replica running. With this, a lost
    supervisor takes its replicas along whatever the moment (Linux; elsewhere a no-op).
    Only for single-threaded parents, as ``preexec_fn`` requires: the supervisor is one.
    """
    import sys

    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def arrange() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(137)

    return arrange


@dataclass(frozen=True)
class ProcessId:
    pid: int
    start_ticks: int | None  # field 22 of /proc/<pid>/stat; None where /proc is unavailable

    def to_list(self) -> list:
        return [self.pid, self.start_ticks]

    @classmethod
    def from_list(cls, value: list) -> ProcessId:
        return cls(int(value[0]), None if value[1] is None else int(value[1]))

    @classmethod
    def of(cls, pid: int) -> ProcessId:
        stat = _proc_stat(pid)
        return cls(pid, stat[1] if stat else None)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start ticks) of a live-or-zombie pid, None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], int(fields[19])


def is_alive(proc: ProcessId) -> bool:
    """True while the very process recorded in ``proc`` runs (not a zombie, not a reused pid)."""
    stat = _proc_stat(proc.pid)
    if stat is None:
        if os.path.isdir("/proc/self"):
            return False
        try:  # no procfs (not Linux): the best available answer
            os.kill(proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    state, ticks = stat
    if state in ("Z", "X"):
        return False
    return proc.start_ticks is None or ticks == proc.start_ticks


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_groups(leaders: list[ProcessId], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM each replica's process group, SIGKILL what is left after ``grace`` seconds.

    Every replica is started as its own session, so its pgid is its pid and the group
    holds everything it spawned. A pid that now names a different process is left alone."""
    ours = []
    for leader in leaders:
        stat = _proc_stat(leader.pid)
        # A leader that is gone may have left children holding the group: Linux does not
        # reuse a pid while a group carries it, so the group is still ours.
        reused = stat is not None and leader.start_ticks is not None and stat[1] != leader.start_ticks
        if not reused:
            ours.append(leader)
            signal_group(leader.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(is_alive(p) for p in ours):
        time.sleep(0.02)
    for leader in ours:
        signal_group(leader.pid, signal.SIGKILL)


def kill_marked(marker: str) -> list[int]:
    """SIGKILL every process whose environment holds ``marker`` ("NAME=value"); their pids.

    The last sweep for a job's processes: it finds them wherever they went (another
    session or process group), whoever their parent is now. Reading another user's
    environment is not allowed, so only our own processes can match."""
    needle = marker.encode() + b"\0"
    killed = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if environ.startswith(needle) or b"\0" + needle in environ:
            try:
                os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
            except (ProcessLookupError, PermissionError):
                pass
    return killed


def exit_code_of(returncode: int) -> int:
    """Popen's returncode as a container runtime reports it: killed by signal N → 128+N (SIGKILL → 137)."""
    return 128 - returncode if returncode < 0 else returncode


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1, all held open while choosing so none repeats."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
