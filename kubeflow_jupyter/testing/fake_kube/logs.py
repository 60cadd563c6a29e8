"""Container logs as the kubelet keeps them: lines of the current run (and the previous one,
for ``previous=true``), with followers woken on every new line."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class ContainerLog:
    lines: list[str] = field(default_factory=list)
    previous: list[str] | None = None
    finished: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class LogBook:
    def __init__(self):
        self._logs: dict[tuple[str, str, str], ContainerLog] = {}

    def get(self, ns: str, pod: str, container: str) -> ContainerLog:
        return self._logs.setdefault((ns, pod, container), ContainerLog())

    def append(self, ns: str, pod: str, container: str, line: str) -> None:
        log = self.get(ns, pod, container)
        log.lines.append(line)
        log.notify()

    def finish(self, ns: str, pod: str, container: str) -> None:
        log = self.get(ns, pod, container)
        log.finished = True
        log.notify()

    def reset(self, ns: str, pod: str) -> None:
        """A new container run (restart) or a new pod with the same name starts a fresh log."""
        for (lns, lpod, container), log in list(self._logs.items()):
            if (lns, lpod) == (ns, pod):
                fresh = ContainerLog(previous=log.lines)
                self._logs[(ns, pod, container)] = fresh
                log.notify()
