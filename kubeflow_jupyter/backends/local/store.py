"""The local runner's on-disk store: one directory per job, readable by any process.

    $KUBEFLOW_JUPYTER_HOME/namespaces/<namespace>/<job>/
        manifest.json    the kubeflow.org/v1 object as created (metadata.uid, creationTimestamp): what
                         `get -o yaml` shows; the supervisor does not read it
        launch.json      the plan the supervisor runs (.plan.JobPlan): each replica's id, argv, cwd,
                         env (TF_CONFIG included) and port; restart, run and success policies
        status.json      the JobSnapshot (written whole, atomically: temp file + os.replace)
        events.log       one line per thing the runner did, oldest first
        supervisor.json  [pid, start ticks] of the job's supervisor
        pids.json        {replica id: [pid, start ticks]} of running replica processes
        logs/<replica>.log   stdout+stderr of each replica (all of its runs)
        logdir/          the replicas' $TFJOB_LOGDIR: event files for tf.summary and Keras's TensorBoard
        lock             flock()ed while a reader marks a lost supervisor's job Failed
    $KUBEFLOW_JUPYTER_HOME/namespaces/<namespace>/.journal
                         one line per status write or deletion of any job (see .journal)

Only the supervisor writes status.json while it lives; its watchdog or a reader
writes it only to record that the supervisor is gone. Deleting renames the
directory to a dot-name first, so the job disappears for every reader at once.

Every failure to write is a :class:`StoreNotWritable` naming the directory; a
job whose files cannot be read shows as Unknown (``unreadable_snapshot``), so one
broken directory never hides the others.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ...errors import StoreNotWritable
from ...tfjob.status import JobSnapshot, now_iso
from . import journal
from .processes import ProcessId

ENV_HOME = "KUBEFLOW_JUPYTER_HOME"
#: A run-job's snapshot of its code and --files (runcell's payload): the replicas' working directory.
PAYLOAD_DIR = "payload"
# Job names are DNS-1035 labels and namespaces DNS-1123 labels: anything else cannot be
# a job here (and must never become a path outside the store).
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def is_valid_name(name: str) -> bool:
    return bool(_NAME.match(name or ""))


def default_home() -> Path:
    """``$KUBEFLOW_JUPYTER_HOME``, else ``kubeflow-jupyter`` in the Jupyter data directory."""
    explicit = os.environ.get(ENV_HOME)
    if explicit:
        return Path(explicit).expanduser().absolute()  # the supervisor may run elsewhere
    from jupyter_core.paths import jupyter_data_dir  # light; imported only when first needed

    return Path(jupyter_data_dir()) / "kubeflow-jupyter"


def write_json_atomic(path: Path, data) -> None:
    """Readers see the old or the new file, never a half-written one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def read_json(path: Path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


#: What reading a job's file can raise beyond FileNotFoundError when the file is damaged or unreadable.
UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, OSError)


def unreadable_snapshot(jobdir: JobDir, namespace: str, error: BaseException) -> JobSnapshot:
    """The row of a job whose status cannot be read: state Unknown, and what is wrong with which file."""
    what = error.strerror if isinstance(error, OSError) and error.strerror else f"{type(error).__name__}: {error}"
    return JobSnapshot(
        name=jobdir.name,
        namespace=namespace,
        problem=(
            f"cannot read {jobdir.status_file} ({what}); the job's state is unknown: "
            f"delete the job (kubeflow-jupyter delete {jobdir.name}) or restore the file"
        ),
    )


@contextmanager
def writing(directory: Path) -> Iterator[None]:
    """Turn a failure to write under ``directory`` into one StoreNotWritable that says what to do."""
    try:
        yield
    except OSError as e:
        if e.errno not in NOT_WRITABLE:
            raise
        raise StoreNotWritable(
            f"cannot write to the local job store {directory} ({e.strerror}): make it writable, "
            f"or set ${ENV_HOME} to a directory you can write to"
        ) from None


NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


class JobDir:
    """Paths and file operations of one job's directory."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    manifest_file = property(lambda self: self.path / "manifest.json")
    launch_file = property(lambda self: self.path / "launch.json")
    status_file = property(lambda self: self.path / "status.json")
    events_file = property(lambda self: self.path / "events.log")
    supervisor_file = property(lambda self: self.path / "supervisor.json")
    pids_file = property(lambda self: self.path / "pids.json")
    supervisor_log = property(lambda self: self.path / "supervisor.log")
    logs_dir = property(lambda self: self.path / "logs")
    logdir = property(lambda self: self.path / "logdir")

    def log_file(self, replica_id: str) -> Path:
        return self.logs_dir / f"{replica_id}.log"

    def exists(self) -> bool:
        return self.status_file.exists()

    # -- status --------------------------------------------------------------
    def read_snapshot(self) -> JobSnapshot:
        """Raises FileNotFoundError when the job is gone, one of UNREADABLE when its file is damaged."""
        data = read_json(self.status_file)
        if not isinstance(data, dict) or data.get("name") != self.name:
            raise ValueError(f"it does not hold the status of TFJob {self.name!r}")
        return JobSnapshot.from_dict(data)

    def write_snapshot(self, snapshot: JobSnapshot) -> None:
        """Replace status.json, then tell the namespace's watchers (a job being built in a
        staging directory has no watchers: its first line is written when it appears)."""
        write_json_atomic(self.status_file, snapshot.to_dict())
        if is_valid_name(self.name):
            journal.append(self.path.parent, self.name, snapshot.resource_version)

    # -- processes -------------------------------------------------------------
    def read_supervisor(self) -> ProcessId | None:
        try:
            return ProcessId.from_list(read_json(self.supervisor_file))
        except (FileNotFoundError, ValueError, IndexError, TypeError):
            return None

    def read_pids(self) -> dict[str, ProcessId]:
        try:
            return {rid: ProcessId.from_list(v) for rid, v in read_json(self.pids_file).items()}
        except (FileNotFoundError, ValueError, AttributeError):
            return {}

    # -- events ------------------------------------------------------------------
    def add_event(self, message: str) -> None:
        # O_APPEND writes of one short line are atomic: several writers never interleave.
        with open(self.events_file, "a", encoding="utf-8") as f:
            f.write(f"{now_iso()} {message}\n")

    def read_events(self) -> list[str]:
        try:
            return self.events_file.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []

    def remove(self) -> JobDir:
        """Take the job out of its namespace at once (renamed to a dot-name, then journaled);
        returns the renamed directory, for the caller to stop what is left and delete it.
        Raises FileNotFoundError when the job is already gone, StoreNotWritable."""
        root = self.path.parent
        tombstone = JobDir(root / f".deleting-{self.name}-{uuid.uuid4().hex[:12]}")
        with writing(root):
            os.rename(self.path, tombstone.path)
            journal.append(root, self.name, journal.DELETED)
        return tombstone

    @contextmanager
    def locked(self) -> Iterator[None]:
        with open(self.path / "lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


class Store:
    """All jobs of one namespace under one home directory."""

    def __init__(self, home: Path, namespace: str):
        self.home = Path(home)
        self.namespace = namespace
        self.root = self.home / "namespaces" / namespace

    def job(self, name: str) -> JobDir | None:
        """The job's directory, or None when the name cannot be a job here."""
        return JobDir(self.root / name) if is_valid_name(name) else None

    def jobs(self) -> list[JobDir]:
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        return [JobDir(Path(e.path)) for e in entries if is_valid_name(e.name) and e.is_dir()]

    def staging_dir(self, name: str) -> Path:
        """A hidden directory to build a new job in before it appears under its name."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".creating-{name}-", dir=self.root))
