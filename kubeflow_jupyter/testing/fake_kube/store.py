"""The fake's etcd: objects keyed by resource/namespace/name, one global resourceVersion
counter, an event history that watches replay from, and compaction (→ 410 Expired).

Stored objects are never mutated once stored (every write stores a new dict), so events
and history share them without copying; readers get their own copies.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from . import statuses

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


TFJOBS = Resource("kubeflow.org", "v1", "tfjobs", "TFJob")
PODS = Resource("", "v1", "pods", "Pod")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
#: Kubeflow's Tensorboard (tensorboard-controller), served only once a test installs its CRD.
TENSORBOARDS = Resource("tensorboard.kubeflow.org", "v1alpha1", "tensorboards", "Tensorboard")


@dataclass(frozen=True)
class Event:
    rv: int
    type: str
    resource: Resource
    obj: dict  # the object as of this event (shared: read only)
    old: dict | None  # the object before (MODIFIED/DELETED), for selector transitions (read only)


def _copy(obj: dict) -> dict:
    """A deep copy of a JSON object (several times faster than copy.deepcopy)."""
    return json.loads(json.dumps(obj))


def timestamp() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Store:
    """Not thread-safe on purpose: only the fake's event-loop thread touches it."""

    def __init__(self, history_limit: int = 100_000):
        self.revision = 0
        self.oldest = 0  # watches from a resourceVersion below this get 410 Expired
        self._objects: dict[Resource, dict[tuple[str, str], dict]] = {}  # resource -> (namespace, name) -> object
        self._history: deque[Event] = deque(maxlen=history_limit)
        self._listeners: list[Callable[[Event], None]] = []

    # -- subscription ------------------------------------------------------
    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, type_: str, resource: Resource, obj: dict, old: dict | None) -> None:
        event = Event(self.revision, type_, resource, obj, old)
        if len(self._history) == self._history.maxlen:
            self.oldest = self._history[0].rv
        self._history.append(event)
        for listener in list(self._listeners):
            listener(event)

    def _bump(self, obj: dict) -> None:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)

    # -- reads ----------------------------------------------------------------
    def _table(self, resource: Resource) -> dict[tuple[str, str], dict]:
        return self._objects.setdefault(resource, {})

    def get(self, resource: Resource, namespace: str, name: str) -> dict:
        obj = self._table(resource).get((namespace, name))
        if obj is None:
            raise statuses.not_found(resource.plural, resource.group, name)
        return _copy(obj)

    def peek(self, resource: Resource, namespace: str, name: str) -> dict | None:
        """The stored object itself, not a copy: read it, never change it."""
        return self._table(resource).get((namespace, name))

    def find(self, resource: Resource, namespace: str, name: str) -> dict | None:
        obj = self._table(resource).get((namespace, name))
        return _copy(obj) if obj else None

    def list(
        self, resource: Resource, namespace: str | None = None, match: Callable[[dict], bool] = lambda o: True
    ) -> list[dict]:
        found = [
            (key, o)
            for key, o in self._table(resource).items()
            if (namespace is None or key[0] == namespace) and match(o)
        ]
        return [_copy(o) for _, o in sorted(found, key=lambda kv: kv[0])]

    def history_since(self, rv: int) -> list[Event]:
        if rv < self.oldest:
            raise ValueError(rv)
        return [e for e in self._history if e.rv > rv]

    def compact(self) -> None:
        """Forget the history, as etcd compaction does: older resourceVersions become 410 Expired."""
        self._history.clear()
        self.oldest = self.revision

    # -- writes ------------------------------------------------------------------
    def create(self, resource: Resource, obj: dict, *, dry_run: bool = False) -> dict:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if key in self._table(resource):
            raise statuses.already_exists(resource.plural, resource.group, meta["name"])
        obj = _copy(obj)
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = timestamp()
        if resource.group:
            meta["generation"] = 1
        if dry_run:
            return obj
        self._bump(obj)
        self._table(resource)[key] = obj
        self._emit(ADDED, resource, obj, None)
        return _copy(obj)

    def update(self, resource: Resource, obj: dict, *, status_only: bool = False, check_rv: bool = True) -> dict:
        """PUT semantics: a resourceVersion in ``obj`` must match (409 Conflict otherwise).

        ``status_only``: the status subresource — only ``.status`` changes; otherwise
        ``.status`` is kept as stored (the main resource ignores it) and a spec change bumps generation.
        """
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace"), meta.get("name"))
        current = self._table(resource).get(key)
        if current is None:
            raise statuses.not_found(resource.plural, resource.group, meta.get("name", ""))
        sent_rv = meta.get("resourceVersion")
        if check_rv and sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
            raise statuses.conflict(resource.plural, resource.group, meta["name"])
        if status_only:
            new = _copy(current)
            new["status"] = _copy(obj.get("status"))
        else:
            new = _copy(obj)
            new["apiVersion"], new["kind"] = resource.api_version, resource.kind
            system = {
                k: current["metadata"][k]
                for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp")
                if k in current["metadata"]
            }
            new["metadata"] = {**new.get("metadata", {}), **system}
            if resource.group:
                if "status" in current:
                    new["status"] = _copy(current["status"])
                else:
                    new.pop("status", None)
                if new.get("spec") != current.get("spec"):
                    new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if new == current:
            return _copy(current)  # a no-op write does not bump the resourceVersion
        self._bump(new)
        self._table(resource)[key] = new
        self._emit(MODIFIED, resource, new, current)
        return _copy(new)

    def delete(self, resource: Resource, namespace: str, name: str) -> dict:
        current = self._table(resource).pop((namespace, name), None)
        if current is None:
            raise statuses.not_found(resource.plural, resource.group, name)
        deleted = _copy(current)
        self._bump(deleted)
        self._emit(DELETED, resource, deleted, current)
        return _copy(deleted)
