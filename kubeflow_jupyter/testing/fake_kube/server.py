"""The HTTP side of the fake API server (aiohttp): routing like kube-apiserver, bearer-token
authentication, deny-rule RBAC, injected faults, CRUD, the status subresource, watches and
pod logs. Every handler runs on the fake's own event loop, the only thread touching the store.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from dataclasses import dataclass

from aiohttp import web

from ...tfjob.schema import crd_schema
from . import discovery, statuses
from .admission import Request as AdmissionRequest
from .admission import ValidatingAdmission
from .logs import LogBook
from .operator import SimulatedOperator
from .selectors import field_matcher, label_matcher
from .statuses import ApiError
from .store import ADDED, CONFIGMAPS, DELETED, MODIFIED, PODS, TENSORBOARDS, TFJOBS, Event, Resource, Store, timestamp
from .validation import admit_custom_object, validate_configmap, validate_tensorboard

_FIELDS = {
    TFJOBS: ("metadata.name", "metadata.namespace"),
    PODS: (
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
}
_FIELDS[CONFIGMAPS] = ("metadata.name", "metadata.namespace")
_FIELDS[TENSORBOARDS] = ("metadata.name", "metadata.namespace")
_SUBRESOURCES = {TFJOBS: ("status",), PODS: ("status", "log"), CONFIGMAPS: (), TENSORBOARDS: ("status",)}
_TRUE = ("true", "1")
#: the resources besides TFJobs that can be created, each with what validates a new one
_VALIDATORS = {CONFIGMAPS: validate_configmap, TENSORBOARDS: validate_tensorboard}


@dataclass
class DenyRule:
    """Forbid ``verb`` on ``resource`` (``"pods/log"`` for a subresource) to ``user`` (None: everyone)."""

    verb: str | None
    resource: str
    group: str
    namespace: str | None = None
    user: str | None = None

    def matches(self, user: str, verb: str, resource: str, group: str, namespace: str | None) -> bool:
        return (
            (self.verb in (None, verb))
            and self.resource == resource
            and self.group == group
            and self.namespace in (None, namespace)
            and self.user in (None, user)
        )


@dataclass
class Fault:
    """Answer the next ``count`` matching requests with ``code`` (5xx: InternalError)."""

    count: int
    code: int = 500
    method: str | None = None
    path_contains: str | None = None
    message: str = "injected fault"

    def matches(self, request: web.Request) -> bool:
        return (
            self.count > 0
            and self.method in (None, request.method)
            and (self.path_contains is None or self.path_contains in request.path_qs)
        )


@dataclass
class RequestRecord:
    at: float  # time.monotonic()
    user: str
    method: str
    path: str
    verb: str
    body: dict | None = None  # the JSON a client sent (create/update/patch/delete)


@dataclass
class Route:
    resource: Resource | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    document: dict | None = None  # discovery answers


class _PageNotFound(Exception):
    """Go's http.NotFound: what the server answers for a path no API group serves."""


class ApiServer:
    def __init__(
        self,
        *,
        crd_installed: bool,
        step: float,
        run_seconds: float,
        bookmark_interval: float,
        default_watch_timeout: float,
    ):
        self.store = Store()
        self.logs = LogBook()
        self.operator = SimulatedOperator(self.store, self.logs, step=step, run_seconds=run_seconds)
        self.crd_installed = crd_installed
        #: Kubeflow's Tensorboard CRD (tensorboard.kubeflow.org/v1alpha1): off unless a test installs it
        self.tensorboard_installed = False
        self.step = step
        self.bookmark_interval = bookmark_interval
        self.default_watch_timeout = default_watch_timeout
        self.tokens: dict[str, str] = {}
        self.deny_rules: list[DenyRule] = []
        self.faults: list[Fault] = []
        self.requests: list[RequestRecord] = []
        # ValidatingAdmissionPolicies and their bindings (empty: nothing beyond the schema is checked),
        # and namespace labels beyond kubernetes.io/metadata.name, which every namespace has.
        self.admission = ValidatingAdmission()
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self.address = ""
        self._watch_transports: dict = {}  # transport -> the watch request's path
        self._log_transports: set = set()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    # -- the request pipeline: route → authenticate → authorize → faults → handler ----------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        record = RequestRecord(time.monotonic(), "system:anonymous", request.method, request.path_qs, "")
        self.requests.append(record)  # at arrival: a watch is counted while it is still open
        try:
            if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.can_read_body:
                try:
                    record.body = json.loads(await request.read())
                except ValueError:
                    record.body = None
            route = self._route(request)
            record.user = self._authenticate(request)
            record.verb = self._verb(request, route)
            self._authorize(record.user, record.verb, route)
            self._inject_fault(request)
            if route.document is not None:
                return web.json_response(route.document)
            return await self._dispatch(request, route, record.verb, record.user)
        except _PageNotFound:
            return web.Response(status=404, text="404 page not found\n", content_type="text/plain", charset="utf-8")
        except ApiError as e:
            return web.json_response(e.status, status=e.code)

    def _route(self, request: web.Request) -> Route:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["version"]:
            return Route(document=discovery.VERSION)
        if not parts or parts[0] not in ("api", "apis"):
            raise _PageNotFound()
        if parts[0] == "api":
            if len(parts) == 1:
                return Route(document=discovery.api_versions(self.address))
            if parts[1] != "v1":
                raise _PageNotFound()
            group, rest, doc = "", parts[2:], discovery.core_v1_resources
        else:
            if len(parts) == 1:
                return Route(document=discovery.api_group_list(self.crd_installed, self.tensorboard_installed))
            served = {TFJOBS.group: self.crd_installed, TENSORBOARDS.group: self.tensorboard_installed}
            if not served.get(parts[1]):
                raise _PageNotFound()
            crd = TFJOBS if parts[1] == TFJOBS.group else TENSORBOARDS
            if len(parts) == 2:
                return Route(document=discovery.api_group(crd.group, crd.version))
            if parts[2] != crd.version:
                raise _PageNotFound()
            group, rest = crd.group, parts[3:]
            doc = discovery.kubeflow_v1_resources if crd == TFJOBS else discovery.tensorboard_v1alpha1_resources
        if not rest:
            return Route(document=doc())
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        elif rest[0] == "namespaces" and len(rest) == 2 and not group:
            return Route(
                document={
                    "kind": "Namespace",
                    "apiVersion": "v1",
                    "metadata": {"name": rest[1], "labels": self.labels_of(rest[1])},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }
            )
        resource = (
            (TFJOBS if group == TFJOBS.group else TENSORBOARDS)
            if group
            else (CONFIGMAPS if rest[0] == CONFIGMAPS.plural else PODS)
        )
        if rest[0] != resource.plural or len(rest) > 3 or (len(rest) == 3 and rest[2] not in _SUBRESOURCES[resource]):
            raise ApiError(statuses.failure(404, "NotFound", "the server could not find the requested resource", {}))
        return Route(resource, namespace, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None)

    def _authenticate(self, request: web.Request) -> str:
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":  # the server compares the scheme case-insensitively
            token = ""
        token = token.strip()
        if token not in self.tokens:
            raise statuses.unauthorized()
        return self.tokens[token]

    @staticmethod
    def _verb(request: web.Request, route: Route) -> str:
        if route.document is not None:
            return "get"
        if request.method == "GET":
            if route.name:
                return "get"
            return "watch" if request.query.get("watch", "").lower() in _TRUE else "list"
        if request.method == "DELETE":
            return "delete" if route.name else "deletecollection"
        return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(request.method, request.method.lower())

    def _authorize(self, user: str, verb: str, route: Route) -> None:
        if route.resource is None:
            return
        full = f"{route.resource.plural}/{route.subresource}" if route.subresource else route.resource.plural
        for rule in self.deny_rules:
            if rule.matches(user, verb, full, route.resource.group, route.namespace):
                raise statuses.forbidden(
                    route.resource.plural,
                    route.resource.group,
                    route.name or "",
                    user,
                    verb,
                    route.subresource or "",
                    route.namespace,
                )

    def _inject_fault(self, request: web.Request) -> None:
        for fault in self.faults:
            if fault.matches(request):
                fault.count -= 1
                if fault.code == 500:
                    raise statuses.internal_error(fault.message)
                reason = {429: "TooManyRequests", 503: "ServiceUnavailable", 504: "Timeout"}.get(fault.code, "")
                raise ApiError(statuses.failure(fault.code, reason, fault.message))

    async def _dispatch(self, request: web.Request, route: Route, verb: str, user: str) -> web.StreamResponse:
        resource, ns = route.resource, route.namespace
        if route.subresource == "log":
            if verb != "get":
                raise statuses.method_not_allowed()
            return await self._logs(request, ns, route.name)
        if verb in ("list", "watch"):
            match = self._matcher(request, resource)
            if verb == "watch":
                return await self._watch(request, resource, ns, match)
            items = self.store.list(resource, ns, match)
            if _wants_table(request):
                return web.json_response(discovery.table(resource, items, str(self.store.revision)))
            return web.json_response(
                {
                    "apiVersion": resource.api_version,
                    "kind": f"{resource.kind}List",
                    "metadata": {"continue": "", "resourceVersion": str(self.store.revision)},
                    "items": items,
                }
            )
        if verb == "get":
            obj = self.store.get(resource, ns, route.name)
            if _wants_table(request):
                return web.json_response(discovery.table(resource, [obj], obj["metadata"]["resourceVersion"]))
            return web.json_response(obj)
        if verb == "create" and resource == TFJOBS and not route.name:
            return web.json_response(self._create(ns, await _json_body(request), _dry_run(request), user), status=201)
        if verb == "create" and resource in _VALIDATORS and not route.name:
            return web.json_response(
                self._create_validated(resource, ns, await _json_body(request), _dry_run(request)), status=201
            )
        if verb in ("update", "patch") and resource == TFJOBS:
            body = await _json_body(request)
            if verb == "patch":
                body = self._merge_patch(request, ns, route.name, body)
            return web.json_response(
                self._update(ns, route.name, body, route.subresource == "status", _dry_run(request), user)
            )
        if verb == "delete":
            body = await _json_body(request) if request.can_read_body else {}
            return web.json_response(self._delete(resource, ns, route.name, request, body))
        raise statuses.method_not_allowed()

    def _matcher(self, request: web.Request, resource: Resource):
        labels = label_matcher(request.query.get("labelSelector"))
        fields = field_matcher(request.query.get("fieldSelector"), _FIELDS[resource])
        return lambda obj: labels(obj) and fields(obj)

    # -- writes -----------------------------------------------------------------------------
    def _admit(self, ns: str, body: dict) -> dict:
        if body.get("kind") != TFJOBS.kind or body.get("apiVersion") != TFJOBS.api_version:
            raise statuses.bad_request(
                f"the API version in the data ({body.get('apiVersion')}) does not match the expected API version "
                f"({TFJOBS.api_version})"
                if body.get("kind") == TFJOBS.kind
                else f"Object 'Kind' is missing or wrong in the request body: expected {TFJOBS.kind}"
            )
        meta = body.setdefault("metadata", {})
        if meta.get("namespace") and meta["namespace"] != ns:
            raise statuses.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = ns
        obj, causes = admit_custom_object(body, crd_schema())
        if causes:
            raise statuses.invalid(TFJOBS.kind, TFJOBS.group, meta.get("name", ""), causes)
        return obj

    def labels_of(self, ns: str) -> dict[str, str]:
        """A namespace's labels: the API server's kubernetes.io/metadata.name, plus any given to the fake."""
        return {**self.namespace_labels.get(ns, {}), "kubernetes.io/metadata.name": ns}

    def _validating_admission(
        self, operation: str, ns: str, obj: dict, old: dict | None, user: str, dry_run: bool, subresource: str = ""
    ) -> None:
        """ValidatingAdmissionPolicies, after the schema (as the server's createValidation/updateValidation)."""
        if not self.admission:
            return
        self.admission.check(
            AdmissionRequest(
                operation=operation,
                group=TFJOBS.group,
                version=TFJOBS.version,
                resource=TFJOBS.plural,
                subresource=subresource,
                namespace=ns,
                name=obj["metadata"].get("name", ""),
                obj=obj,
                old=old,
                user=user,
                namespace_labels=self.labels_of(ns),
                dry_run=dry_run,
            )
        )

    def _create(self, ns: str, body: dict, dry_run: bool, user: str = "") -> dict:
        obj = self._admit(ns, body)
        obj.pop("status", None)  # the status subresource: create ignores .status
        self._validating_admission("CREATE", ns, obj, None, user, dry_run)
        return self.store.create(TFJOBS, obj, dry_run=dry_run)

    def _create_validated(self, resource: Resource, ns: str, body: dict, dry_run: bool) -> dict:
        """Create a ConfigMap or a Tensorboard, checked as the API server checks it."""
        if body.get("kind") != resource.kind or body.get("apiVersion") != resource.api_version:
            raise statuses.bad_request(
                f"Object 'Kind' is missing or wrong in the request body: expected {resource.kind}"
            )
        meta = body.setdefault("metadata", {})
        if meta.get("namespace") and meta["namespace"] != ns:
            raise statuses.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = ns
        obj, causes = _VALIDATORS[resource](body)
        if causes:
            raise statuses.invalid(resource.kind, resource.group, meta.get("name", ""), causes)
        return self.store.create(resource, obj, dry_run=dry_run)

    def _merge_patch(self, request: web.Request, ns: str, name: str, patch: dict) -> dict:
        if request.content_type != "application/merge-patch+json":
            raise ApiError(
                statuses.failure(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    "include: application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml",
                    {},
                )
            )
        return _merge(self.store.get(TFJOBS, ns, name), patch)

    def _update(self, ns: str, name: str, body: dict, status_only: bool, dry_run: bool, user: str = "") -> dict:
        body.setdefault("metadata", {})
        if body["metadata"].get("name") not in (None, name):
            raise statuses.bad_request(
                f"the name of the object ({body['metadata']['name']}) does not match the name on the URL ({name})"
            )
        body["metadata"]["name"] = name
        obj = self._admit(ns, body)
        old = self.store.find(TFJOBS, ns, name)
        if old is not None:  # a missing object is the store's 404, before any admission
            self._validating_admission("UPDATE", ns, obj, old, user, dry_run, "status" if status_only else "")
        if dry_run:
            return obj
        return self.store.update(TFJOBS, obj, status_only=status_only)

    def _delete(self, resource: Resource, ns: str, name: str, request: web.Request, options: dict) -> dict:
        obj = self.store.get(resource, ns, name)
        if _dry_run(request):
            return obj
        policy = request.query.get("propagationPolicy") or options.get("propagationPolicy") or "Background"
        if resource in (PODS, CONFIGMAPS, TENSORBOARDS):
            return self.store.delete(resource, ns, name)
        if policy == "Foreground":
            if not obj["metadata"].get("deletionTimestamp"):
                obj["metadata"]["deletionTimestamp"] = timestamp()
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
                obj["metadata"]["finalizers"] = [*(obj["metadata"].get("finalizers") or []), "foregroundDeletion"]
                obj = self.store.update(TFJOBS, obj, check_rv=False)
                asyncio.get_running_loop().call_later(self.step, self._finish_foreground, ns, name)
            return obj
        deleted = self.store.delete(TFJOBS, ns, name)
        if policy == "Orphan":
            for pod in self._owned_pods(ns, deleted["metadata"]["uid"]):
                pod["metadata"]["ownerReferences"] = []
                self.store.update(PODS, pod, check_rv=False)
        else:
            asyncio.get_running_loop().call_later(self.step, self.operator.collect_garbage, ns, name)
        return deleted

    def _owned_pods(self, ns: str, uid: str) -> list[dict]:
        return self.store.list(
            PODS, ns, lambda p: any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
        )

    def _finish_foreground(self, ns: str, name: str) -> None:
        """The garbage collector: dependents first, then the owner (foregroundDeletion finalizer)."""
        self.operator.collect_garbage(ns, name)
        if self.store.find(TFJOBS, ns, name):
            self.store.delete(TFJOBS, ns, name)

    # -- watch ---------------------------------------------------------------------------------
    async def _watch(self, request: web.Request, resource: Resource, ns: str | None, match) -> web.StreamResponse:
        q = request.query
        since = q.get("resourceVersion", "")
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else self.default_watch_timeout
        bookmarks = q.get("allowWatchBookmarks", "").lower() in _TRUE
        queue: asyncio.Queue = asyncio.Queue()

        def translate(event: Event) -> tuple[str, dict] | None:
            if event.resource != resource or (ns and event.obj["metadata"]["namespace"] != ns):
                return None
            now = match(event.obj)
            before = event.old is not None and match(event.old)
            if event.type == ADDED:
                return (ADDED, event.obj) if now else None
            if event.type == DELETED:
                return (DELETED, event.obj) if before or now else None
            if now and before:
                return (MODIFIED, event.obj)
            if now:
                return (ADDED, event.obj)
            return (DELETED, event.obj) if before else None

        # Subscribe and read the starting point in the same loop step: nothing falls in between.
        unsubscribe = self.store.subscribe(lambda e: (t := translate(e)) and queue.put_nowait(t))
        try:
            if since in ("", "0"):
                initial = [(ADDED, o) for o in self.store.list(resource, ns, match)]
            else:
                initial = [t for e in self.store.history_since(int(since)) if (t := translate(e))]
        except ValueError:
            initial = [("ERROR", statuses.expired(since, self.store.oldest))]
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        transport = request.transport
        self._watch_transports[transport] = request.path_qs
        try:
            await response.prepare(request)
            for type_, obj in initial:
                await _write_event(response, type_, obj)
                if type_ == "ERROR":
                    return response
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while (remaining := deadline - loop.time()) > 0:
                wait = min(remaining, self.bookmark_interval) if bookmarks else remaining
                try:
                    type_, obj = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    if bookmarks and deadline - loop.time() > 0:
                        await _write_event(
                            response,
                            "BOOKMARK",
                            {
                                "kind": resource.kind,
                                "apiVersion": resource.api_version,
                                "metadata": {"resourceVersion": str(self.store.revision), "creationTimestamp": None},
                            },
                        )
                    continue
                await _write_event(response, type_, obj)
            await response.write_eof()
        except (ConnectionResetError, ConnectionError, RuntimeError):
            pass  # the client went away, or drop_watches() cut the stream
        finally:
            unsubscribe()
            self._watch_transports.pop(transport, None)
        return response

    def close_streams(self) -> None:
        """Shutting down: cut watches and followed logs so the server need not wait for them."""
        self.drop_watches()
        for transport in [t for t in self._log_transports if t is not None]:
            transport.abort()
        self._log_transports.clear()

    def open_watches(self) -> list[str]:
        """The paths of the watch streams open now."""
        return list(self._watch_transports.values())

    def drop_watches(self) -> int:
        """Cut every open watch stream mid-flight, as a load balancer or a restarting server does."""
        dropped = [t for t in self._watch_transports if t is not None]
        for transport in dropped:
            transport.abort()
        self._watch_transports.clear()
        return len(dropped)

    # -- logs ------------------------------------------------------------------------------------
    async def _logs(self, request: web.Request, ns: str, name: str) -> web.StreamResponse:
        pod = self.store.get(PODS, ns, name)
        names = [c["name"] for c in pod["spec"].get("containers") or []]
        container = request.query.get("container")
        if not container:
            if len(names) != 1:
                raise statuses.bad_request(
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
                )
            container = names[0]
        if container not in names:
            raise statuses.bad_request(f"container {container} is not valid for pod {name}")
        previous = request.query.get("previous", "").lower() in _TRUE
        follow = request.query.get("follow", "").lower() in _TRUE
        log = self.logs.get(ns, name, container)
        if not pod["spec"].get("nodeName"):
            return web.Response(text="", content_type="text/plain")  # not scheduled: no kubelet to ask
        state = next(
            (s.get("state") or {} for s in pod["status"].get("containerStatuses") or [] if s["name"] == container), {}
        )
        if previous:
            if log.previous is None:
                raise statuses.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
            lines, follow = list(log.previous), False
        elif "waiting" in state and log.previous is None:
            raise statuses.bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: '
                f"{state['waiting'].get('reason', 'ContainerCreating')}"
            )
        else:
            lines = list(log.lines) if "waiting" not in state else list(log.previous or [])
            follow = follow and "waiting" not in state
        tail = request.query.get("tailLines")
        if tail is not None:
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        if not follow:
            return web.Response(text="".join(f"{line}\n" for line in lines), content_type="text/plain")
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        self._log_transports.add(request.transport)
        try:
            for line in lines:
                await response.write(f"{line}\n".encode())
            sent = len(log.lines)
            while True:
                changed = log.changed
                for line in log.lines[sent:]:
                    await response.write(f"{line}\n".encode())
                sent = len(log.lines)
                if log.finished or self.logs.get(ns, name, container) is not log:
                    break
                await changed.wait()
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self._log_transports.discard(request.transport)
        return response


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _dry_run(request: web.Request) -> bool:
    value = request.query.get("dryRun")
    if value not in (None, "All"):
        raise statuses.bad_request(f'Unsupported value: "{value}": supported values: "All"')
    return value == "All"


async def _json_body(request: web.Request) -> dict:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise statuses.bad_request(f"couldn't get version/kind; json parse error: {e}") from None
    if not isinstance(body, dict):
        raise statuses.bad_request("couldn't get version/kind; json parse error: expected an object")
    return body


def _merge(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


async def _write_event(response: web.StreamResponse, type_: str, obj: dict) -> None:
    await response.write((json.dumps({"type": type_, "object": obj}) + "\n").encode())


__all__ = ["ApiServer", "DenyRule", "Fault", "RequestRecord"]
