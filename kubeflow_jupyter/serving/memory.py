"""Giving memory back to the system after a large request.

A request of tens of megabytes leaves the server's heap that much bigger once it
is answered: glibc keeps freed memory in its arenas (and, once a large block has
been freed, serves the next ones from the heap rather than from fresh mappings),
so the server's RSS would stay at its high-water mark. After a request that made
the server hold at least ``threshold`` bytes, a background thread waits until the
request's last buffers are gone (gRPC drops the request message only after the
handler returns) and calls ``malloc_trim(0)``, which returns the free pages of
every arena. Small requests never pay for it. Where the C library has no
``malloc_trim`` (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 4 << 20


def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class MemoryReturner:
    """``note(nbytes)`` after each request; one thread trims the heap shortly after large ones."""

    def __init__(self, threshold: int = DEFAULT_THRESHOLD, settle: float = 0.1):
        self.threshold = threshold
        self.settle = settle  # quiet time after the last large request before trimming
        self.trims = 0
        self._trim = _malloc_trim()
        self._due = threading.Event()
        self._last = 0.0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def note(self, nbytes: int) -> None:
        """A request that made the server hold about ``nbytes`` has been answered."""
        if nbytes < self.threshold or self._trim is None:
            return
        self._last = time.monotonic()
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="memory-returner", daemon=True)
                    self._thread.start()
        self._due.set()

    def _run(self) -> None:
        while True:
            self._due.wait()
            self._due.clear()  # a request noted from here on gets a trim of its own
            while (wait := self._last + self.settle - time.monotonic()) > 0:  # until large requests pause
                time.sleep(wait)
            try:
                self._trim(0)
                self.trims += 1
            except Exception:  # never let housekeeping take anything down
                log.debug("malloc_trim failed", exc_info=True)
