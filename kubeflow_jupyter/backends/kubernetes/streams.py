"""Long-lived watch streams that survive what real clusters do to them.

A :class:`ResourceStream` lists once, then watches from the list's resourceVersion on its
own thread and puts every change on a queue shared with other streams. It resumes from the
last resourceVersion it saw (events or bookmarks) when the server ends the watch
(``timeoutSeconds``) or the connection drops; on ``410 Expired`` (history compacted) it lists
again and hands the consumer the fresh list. No polling: between changes nothing is sent.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubernetes.watch import Watch

logger = logging.getLogger(__name__)

#: answers a server gives while restarting or overloaded: worth retrying
TRANSIENT = (429, 500, 502, 503, 504)

# Event kinds the consumer gets besides the server's ADDED/MODIFIED/DELETED.
RELIST = "RELIST"  # objects: the complete list after a 410
FAIL = "FAIL"  # error: the exception that ended the stream


@dataclass(frozen=True)
class StreamEvent:
    source: str  # "tfjob" or "pod"
    type: str  # ADDED | MODIFIED | DELETED | RELIST | FAIL
    #: the object that changed (ADDED, MODIFIED, DELETED), or every object (RELIST)
    objects: tuple[dict, ...] = ()
    error: BaseException | None = None  # set on FAIL only

    @property
    def gone(self) -> bool:
        """For a stream on a single object: that object no longer exists."""
        return self.type == "DELETED" or (self.type == RELIST and not self.objects)


def list_objects(list_fn: Callable, **kwargs) -> tuple[list[dict], str]:
    """Items as plain dicts, and the list's resourceVersion (where a watch starts)."""
    resp = list_fn(**kwargs, _preload_content=False)
    body = json.loads(resp.data)
    return body.get("items") or [], (body.get("metadata") or {}).get("resourceVersion", "")


class ResourceStream:
    """One resource's watch (``list_fn`` is a list call of the official client, e.g.
    ``CoreV1Api.list_namespaced_pod`` bound to its selectors with ``functools.partial``)."""

    #: failed reconnects in a row (without an event in between) before giving up
    MAX_RECONNECTS = 5

    def __init__(
        self,
        source: str,
        list_fn: Callable,
        events: queue.Queue[StreamEvent],
        *,
        resource_version: str,
        watch_timeout: int,
        request_timeout: float,
    ):
        self.source = source
        self.list_fn = list_fn
        self.events = events
        self.resource_version = resource_version
        self.watch_timeout = watch_timeout
        self.request_timeout = request_timeout
        self._stopped = threading.Event()
        self._watch: Watch | None = None
        self._thread = threading.Thread(target=self._run, name=f"kfj-watch-{source}", daemon=True)

    def start(self) -> ResourceStream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._watch is not None:
            self._watch.stop()  # shuts the socket down: the blocked read returns at once
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            self._follow()
        except BaseException as e:
            self.events.put(StreamEvent(self.source, FAIL, error=e))

    def _follow(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        from .errors import api_failures

        failures = 0
        while not self._stopped.is_set():
            self._watch = watch.Watch(return_type="object")
            try:
                for event in self._watch.stream(
                    self.list_fn,
                    resource_version=self.resource_version,
                    timeout_seconds=self.watch_timeout,
                    allow_watch_bookmarks=True,
                    _request_timeout=(self.request_timeout, self.watch_timeout + self.request_timeout),
                ):
                    obj = event["raw_object"]
                    self.resource_version = (obj.get("metadata") or {}).get("resourceVersion") or self.resource_version
                    failures = 0
                    if event["type"] != "BOOKMARK":
                        self.events.put(StreamEvent(self.source, event["type"], (obj,)))
            except ApiException as e:
                if self._stopped.is_set():
                    return
                if e.status in TRANSIENT and failures < self.MAX_RECONNECTS:
                    failures += 1
                    logger.info(
                        "%s watch: %s %s from the API server; reconnecting (attempt %d of %d)",
                        self.source,
                        e.status,
                        e.reason,
                        failures,
                        self.MAX_RECONNECTS,
                    )
                    self._stopped.wait(_backoff(failures))
                    continue
                if e.status != 410:
                    logger.info("%s watch ended: %s %s", self.source, e.status, e.reason)
                    self.events.put(StreamEvent(self.source, FAIL, error=e))
                    return
                logger.info(
                    "%s watch: resourceVersion %s expired (410); listing again", self.source, self.resource_version
                )
                try:  # our resourceVersion was compacted away: start over from a fresh list
                    items, self.resource_version = list_objects(self.list_fn)
                except api_failures() as list_error:
                    logger.info("%s watch ended: listing again failed: %r", self.source, list_error)
                    self.events.put(StreamEvent(self.source, FAIL, error=list_error))
                    return
                self.events.put(StreamEvent(self.source, RELIST, tuple(items)))
                continue
            except api_failures() as e:  # a dropped connection, a reset, a read timeout
                if self._stopped.is_set():
                    return
                failures += 1
                if failures > self.MAX_RECONNECTS:
                    logger.info("%s watch ended after %d failed reconnects: %r", self.source, self.MAX_RECONNECTS, e)
                    self.events.put(StreamEvent(self.source, FAIL, error=e))
                    return
                logger.info(
                    "%s watch: connection lost (%s); resuming from resourceVersion %s (attempt %d of %d)",
                    self.source,
                    type(e).__name__,
                    self.resource_version,
                    failures,
                    self.MAX_RECONNECTS,
                )
                # resume from the last resourceVersion: the server replays what we missed
                self._stopped.wait(_backoff(failures))
                continue
            if not self._stopped.is_set():
                logger.debug(
                    "%s watch: the server ended it after %ss; renewing from resourceVersion %s",
                    self.source,
                    self.watch_timeout,
                    self.resource_version,
                )


def _backoff(failures: int) -> float:
    """0.05 s, doubling, at most 1 s: a restarting server is back within seconds."""
    return min(0.05 * 2 ** (failures - 1), 1.0)
