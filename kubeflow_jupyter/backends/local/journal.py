"""The namespace journal: one line per change of any job, so a watch reads changes, not the whole store.

    $KUBEFLOW_JUPYTER_HOME/namespaces/<namespace>/.journal
        <job> <resourceVersion>     written right after that status.json replaced the old one
        <job> -                     written right after the job's directory was removed

Writers append whole short lines with O_APPEND (one ``write``: lines from several
processes never interleave) *after* the change is on disk, so a reader that sees
a line reads that state or a newer one. A watch opens the journal at its end,
reads the store once, then reads only new lines: its cost follows the number of
changes, not the number of jobs. inotify on the namespace directory wakes it as a
line lands; where inotify is unavailable (another OS, or the per-user instance limit
reached) it polls the journal's size every ``POLL_SECONDS`` instead: still one
``stat``, whatever the store holds.

The journal is a hint, not the record: status.json is. It is kept short by the
writer whose line takes it past ``MAX_BYTES``: that writer unlinks it and the next
write starts a new file. A reader that finds another file (or none) under the name
reads the new file from its start and also re-reads every job once, which covers a
line that a slow writer appended to the unlinked file after the reader had finished
with it.
"""

from __future__ import annotations

import os
import select
import time
from pathlib import Path
from typing import BinaryIO

NAME = ".journal"
MAX_BYTES = 1 << 20  # ~25,000 changes between two full re-reads
DELETED = "-"
POLL_SECONDS = 0.05
#: A returned value of :meth:`JournalReader.wait`: the journal was replaced, re-read every job.
RESCAN = None


def append(root: Path, job: str, version: str) -> None:
    """Record that ``job`` changed (``version``: its new resourceVersion, or ``DELETED``)."""
    path = root / NAME
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, f"{job} {version}\n".encode())
        st = os.fstat(fd)
        if st.st_size > MAX_BYTES:
            try:
                if os.stat(path).st_ino == st.st_ino:  # not already replaced by another writer
                    os.unlink(path)
            except FileNotFoundError:
                pass
    finally:
        os.close(fd)


def _inotify(directory: Path):
    """An inotify instance watching ``directory``'s entries, or None where there is none to be had."""
    try:
        from inotify_simple import INotify, flags
    except ImportError:  # not Linux (the dependency is Linux-only)
        return None
    try:
        notify = INotify()
    except OSError:  # e.g. EMFILE: fs.inotify.max_user_instances reached
        return None
    try:
        notify.add_watch(str(directory), flags.MODIFY | flags.CREATE | flags.DELETE | flags.MOVED_TO | flags.MOVED_FROM)
    except OSError:
        notify.close()
        return None
    return notify


class JournalReader:
    """New journal lines since the reader was opened: ``wait()`` → {job: version}, or RESCAN."""

    def __init__(self, root: Path):
        self.path = Path(root) / NAME
        self._file: BinaryIO | None = None
        self._partial = b""
        try:  # a journal that exists before the first line: no line can come and go unseen
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644))
        except OSError:
            pass  # a read-only store: nothing will be written to it anyway
        self._open(at_end=True)
        self._notify = _inotify(self.path.parent) if self.path.parent.is_dir() else None

    @property
    def event_driven(self) -> bool:
        return self._notify is not None

    def close(self) -> None:
        for handle in (self._file, self._notify):
            if handle is not None:
                handle.close()
        self._file = self._notify = None

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open(self, at_end: bool) -> None:
        try:
            # Open for the reader's lifetime: close() closes it.
            f = open(self.path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            self._file = None
            return
        if at_end:
            f.seek(0, os.SEEK_END)
        self._file = f
        self._partial = b""

    def wait(self, timeout: float) -> dict[str, str] | None:
        """Block up to ``timeout`` seconds for new lines; {job: latest version named} (empty when
        nothing came), or RESCAN when the journal was replaced and every job must be re-read."""
        changes = self._read()
        if changes != {}:
            return changes
        if self._notify is not None:
            readable, _, _ = select.select([self._notify.fileno()], [], [], max(timeout, 0.0))
            if readable:
                self._notify.read(timeout=0)  # drain: the events only wake us, the journal says what changed
            return self._read()
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            changes = self._read()
            left = deadline - time.monotonic()
            if changes != {} or left <= 0:
                return changes
            time.sleep(min(POLL_SECONDS, left))

    def _read(self) -> dict[str, str] | None:
        changes: dict[str, str] = {}
        if self._file is not None:
            data = self._partial + self._file.read()
            lines = data.split(b"\n")
            self._partial = lines.pop()  # an unfinished line waits for its end
            for line in lines:
                job, _, version = line.decode("utf-8", "replace").partition(" ")
                if job:
                    changes[job] = version
        replaced = self._replaced()
        if replaced is None:
            return changes
        self._open(at_end=False)  # every line of the new file is news
        if replaced:
            return RESCAN
        changes.update(self._read() or {})
        return changes

    def _replaced(self) -> bool | None:
        """None: same file as before. False: a journal appeared where there was none. True: another file."""
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if self._file is None:
            return None if current is None else False
        if current == os.fstat(self._file.fileno()).st_ino:
            return None
        return True
