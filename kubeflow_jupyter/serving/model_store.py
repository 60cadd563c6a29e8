"""The versions of one model on disk, kept in step with the disk by a polling thread.

A model is a base directory of integer version subdirectories, each a SavedModel
(``BASE/1/saved_model.pb``), TF Serving's layout. Every version on disk is loaded
(TF Serving's ``all`` version policy); a poller picks up new, changed and removed
version directories without a restart. Version labels (``--label stable=1``) name
versions. Which version a request gets is the core's decision (:mod:`.core`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from .loading import Version, load_version, saved_model_file

log = logging.getLogger(__name__)


def version_dirs(base: Path) -> dict[int, Path]:
    """Integer-named subdirectories holding a saved_model.pb (partly written ones are skipped)."""
    found = {}
    try:
        entries = list(os.scandir(base))
    except OSError:
        return {}
    for entry in entries:
        if entry.is_dir() and entry.name.isdigit() and saved_model_file(Path(entry.path)):
            found[int(entry.name)] = Path(entry.path)
    return found


class ModelStore:
    """The versions of one model under ``base_path``, kept in step with the disk."""

    def __init__(
        self,
        name: str,
        base_path: str | os.PathLike,
        *,
        labels: dict[str, int] | None = None,
        poll_seconds: float = 1.0,
        on_change: Callable[[str], None] | None = None,
        batching: bool = True,
        batch_timeout: float = 0.001,
    ):
        self.name = name
        self.batching = batching
        self.batch_timeout = batch_timeout
        self.base_path = Path(base_path)
        self.labels = dict(labels or {})
        self.poll_seconds = poll_seconds
        self.on_change = on_change or (lambda message: log.info("%s", message))
        self._versions: dict[int, Version] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- keeping up with the disk ------------------------------------------
    def poll(self) -> None:
        """Load new version directories (and changed ones), retire removed ones."""
        on_disk = version_dirs(self.base_path)
        with self._lock:
            known = dict(self._versions)
        for number in sorted(set(known) - set(on_disk)):
            if known[number].state != "END" or known[number].loaded is not None:
                with self._lock:
                    self._versions.pop(number, None)
                self.on_change(f"model {self.name!r}: version {number} removed from {self.base_path}")
        for number, path in sorted(on_disk.items()):
            stamp = saved_model_file(path).stat().st_mtime
            current = known.get(number)
            if current is not None and current.stamp == stamp:
                continue
            version = load_version(
                number,
                path,
                stamp,
                batching=self.batching,
                batch_timeout=self.batch_timeout,
                say=self.on_change,
                model=self.name,
            )
            with self._lock:
                self._versions[number] = version

    def start(self) -> None:
        self.poll()
        self._thread = threading.Thread(target=self._watch, name=f"poll-{self.name}", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # keep polling whatever one pass hit
                log.exception("polling %s failed", self.base_path)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- what is there --------------------------------------------------------
    def available(self) -> list[int]:
        with self._lock:
            return sorted(n for n, v in self._versions.items() if v.state == "AVAILABLE")

    def versions(self) -> list[Version]:
        with self._lock:
            return [self._versions[n] for n in sorted(self._versions)]

    def available_version(self, number: int | None = None) -> Version | None:
        """Version ``number`` if it is AVAILABLE (``None``: the highest AVAILABLE one), else None."""
        with self._lock:
            if number is None:
                ready = [n for n, v in self._versions.items() if v.state == "AVAILABLE"]
                number = max(ready) if ready else None
            found = self._versions.get(number) if number is not None else None
        return found if found is not None and found.state == "AVAILABLE" else None
