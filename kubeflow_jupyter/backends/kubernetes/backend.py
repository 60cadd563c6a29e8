"""TFJobs on a cluster running Kubeflow training-operator (kubeflow.org/v1), through the
official ``kubernetes`` client: CustomObjectsApi for tfjobs, CoreV1Api for their pods and logs."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ...errors import BackendError, JobNotFound, KubeflowJupyterError, ReplicaNotFound, ReplicaNotStarted
from ...tfjob import model
from ...tfjob.model import TFJob
from ...tfjob.security import with_restricted_defaults
from ...tfjob.status import JobSnapshot, default_replica_id
from ..base import Stop, require_namespace
from .connection import connect
from .errors import api_failures, status_body, translate
from .logdir import logdir_of, mount_logdir
from .snapshot import BACKEND_NAME, build_snapshot, snapshot_key, spec_replicas
from .streams import RELIST, ResourceStream, StreamEvent, list_objects

GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "tfjobs"
TENSORBOARD_PLURAL = "tensorboards"
#: Seconds one API request may take (connect + answer): list, get, create, delete, a log read.
DEFAULT_REQUEST_TIMEOUT = 30.0
#: Seconds one watch request lives (the server's ``timeoutSeconds``) before it is renewed from
#: its resourceVersion: bounds how long a half-dead connection goes unnoticed.
DEFAULT_WATCH_TIMEOUT = 300
FOREGROUND = "Foreground"
LOG_IDLE_TIMEOUT = 24 * 3600.0  # seconds a followed log may stay silent
STOP_CHECK_SECONDS = 0.1  # how often a followed log looks at its stop event (a local check)

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ...runcell.payload import Payload


def payload_configmap_name(job_name: str) -> str:
    """The ConfigMap carrying a run-job's code and --files (owned by the TFJob)."""
    return f"{job_name}-payload"


class KubernetesBackend:
    name = BACKEND_NAME

    def __init__(
        self,
        namespace: str | None = None,
        context: str | None = None,
        kubeconfig: str | os.PathLike | None = None,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        watch_timeout: int = DEFAULT_WATCH_TIMEOUT,
        delete_timeout: float = 60.0,
    ):
        """``context``: a kubeconfig context (default: $KUBEFLOW_JUPYTER_KUBE_CONTEXT, then the current one);
        ``request_timeout``: seconds each API request may take;
        ``watch_timeout``: seconds each watch request lives before it is renewed from its resourceVersion;
        ``delete_timeout``: how long ``delete`` waits for the garbage collector to remove the job."""
        from kubernetes import client

        self.connection = connect(namespace, context, kubeconfig)
        self.namespace = self.connection.namespace
        self.request_timeout = request_timeout
        self.watch_timeout = watch_timeout
        self.delete_timeout = delete_timeout
        self._jobs = client.CustomObjectsApi(self.connection.api_client)
        self._core = client.CoreV1Api(self.connection.api_client)
        logger.debug("%r: request timeout %ss, watch timeout %ss", self, request_timeout, watch_timeout)

    def __repr__(self) -> str:
        return f"KubernetesBackend(namespace={self.namespace!r}, {self.connection.source}, {self.connection.host})"

    # -- plumbing -----------------------------------------------------------------
    def _call(self, fn, *args, name: str | None = None, **kwargs):
        try:
            return fn(*args, _request_timeout=self.request_timeout, **kwargs)
        except api_failures() as e:
            raise self._translated(e, name) from None

    def _translated(self, exc: BaseException, name: str | None) -> KubeflowJupyterError:
        error = translate(exc, self.connection, name=name)
        logger.debug("Kubernetes API failure %s: %s", _describe(exc), error)
        return error

    def _tfjob_lister(self, name: str | None = None) -> Callable:
        lister = functools.partial(self._jobs.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL)
        return functools.partial(lister, field_selector=f"metadata.name={name}") if name else lister

    def _pod_lister(self, name: str | None = None) -> Callable:
        selector = f"{model.LABEL_JOB_NAME}={name}" if name else model.LABEL_JOB_NAME
        return functools.partial(self._core.list_namespaced_pod, self.namespace, label_selector=selector)

    def _list(self, lister: Callable, name: str | None = None) -> tuple[list[dict], str]:
        return self._call(list_objects, lister, name=name)

    def _existing_job(self, name: str) -> str:
        """The TFJob's list resourceVersion, where a watch on it starts. Raises JobNotFound."""
        jobs, rv = self._list(self._tfjob_lister(name), name)
        if not jobs:
            raise JobNotFound(name, self._where())
        return rv

    @contextlib.contextmanager
    def _streams(self, *watched: tuple[str, Callable, str]) -> Iterator[queue.Queue[StreamEvent]]:
        """One queue of the events of every ``(source, lister, resourceVersion)``, each watched from
        that version on its own thread until the block ends."""
        events: queue.Queue[StreamEvent] = queue.Queue()
        streams = [
            ResourceStream(
                source,
                lister,
                events,
                resource_version=rv,
                watch_timeout=self.watch_timeout,
                request_timeout=self.request_timeout,
            ).start()
            for source, lister, rv in watched
        ]
        try:
            yield events
        finally:
            for stream in streams:
                stream.stop()

    def _next_event(
        self, events: queue.Queue[StreamEvent], timeout: float | None, name: str | None
    ) -> StreamEvent | None:
        """The next event, None when ``timeout`` passes first; a failed stream raises here."""
        try:
            event = events.get(timeout=timeout)
        except queue.Empty:
            return None
        if event.error is not None:
            raise self._stream_failure(event.error, name)
        return event

    def _delete_tfjob(self, name: str, propagation: str):
        return self._call(
            self._jobs.delete_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            propagation_policy=propagation,
            name=name,
        )

    def _where(self) -> str:
        return f"in namespace {self.namespace!r} {self.connection.where()}"

    def _stream_failure(self, exc: BaseException, name: str | None) -> BaseException:
        return self._translated(exc, name) if isinstance(exc, api_failures()) else exc

    # -- the protocol --------------------------------------------------------------
    def payload_job(self, job: TFJob, payload: Payload) -> tuple[TFJob, list[dict]]:
        """Every replica mounts the payload's ConfigMap read-only at /kfj/payload and runs the
        standard-library bootstrap, which pip-installs --packages and copies the files into the
        emptyDir working directory /kfj/work. Raises PayloadTooLarge before anything exists."""
        from ...tfjob.spec import parse_tfjob

        cm_name = payload_configmap_name(job.name)
        configmap, _ = payload.to_configmap(cm_name, self.namespace)
        parts = payload.pod_parts(cm_name, "python")
        manifest = job.to_manifest()
        for spec in manifest["spec"]["tfReplicaSpecs"].values():
            pod = spec["template"].setdefault("spec", {})
            pod["volumes"] = [*(pod.get("volumes") or []), *parts["volumes"]]
            for container in pod["containers"]:
                if container.get("name") != model.DEFAULT_CONTAINER:
                    continue
                container["command"] = list(parts["command"])
                container.pop("args", None)
                container["workingDir"] = parts["workingDir"]
                container["volumeMounts"] = [*(container.get("volumeMounts") or []), *parts["volumeMounts"]]
        return parse_tfjob(manifest).job, [configmap]

    def create(
        self, job: TFJob, *, workdir: str | None = None, dry_run: bool = False, payload: Payload | None = None
    ) -> JobSnapshot:
        """Submit to the API server (``dryRun=All`` for a dry run: validated server-side, nothing stored).
        ``workdir`` is the local backend's concern: on a cluster the image's workingDir applies.
        Replica templates get a Pod Security ``restricted`` securityContext where the user set
        none (:func:`~kubeflow_jupyter.tfjob.security.with_restricted_defaults`): clusters that
        enforce ``restricted``, such as the hub's, refuse the job's pods otherwise.

        With ``payload``: its ConfigMap is checked for size first, then the TFJob is created, then
        the ConfigMap with an ownerReference to it (its uid), so the garbage collector deletes it
        with the job; the pods wait for it to mount. If the ConfigMap cannot be created (RBAC:
        the notebook's Role needs configmaps create/get/delete), the TFJob is deleted again.

        A job with a logdir (``--logdir pvc://CLAIM/SUBPATH``) mounts that claim in every replica
        and names the mount in ``$TFJOB_LOGDIR`` (:func:`.logdir.mount_logdir`)."""
        require_namespace(job, self.namespace)
        if payload is not None:  # PayloadTooLarge before anything is created
            payload.to_configmap(payload_configmap_name(job.name), self.namespace)
        manifest = with_restricted_defaults(mount_logdir(job.to_manifest()))
        obj = self._call(
            self._jobs.create_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            manifest,
            dry_run="All" if dry_run else None,
            name=job.name,
        )
        if payload is not None:
            self._create_payload(job.name, payload, obj, dry_run)
        return build_snapshot(obj, [])

    def _create_payload(self, name: str, payload: Payload, owner: dict, dry_run: bool) -> None:
        cm_name = payload_configmap_name(name)
        configmap, _ = payload.to_configmap(cm_name, self.namespace, owner=None if dry_run else owner)
        try:
            self._call(
                self._core.create_namespaced_config_map, self.namespace, configmap, dry_run="All" if dry_run else None
            )
        except KubeflowJupyterError as e:
            if not dry_run:
                with contextlib.suppress(KubeflowJupyterError):
                    self._delete_tfjob(name, "Background")
            # The same class when it takes a message (PermissionDenied, BackendError), else BackendError.
            kind = type(e) if type(e).__init__ is Exception.__init__ else BackendError
            raise kind(
                f"cannot create the ConfigMap {cm_name!r} that carries the code, so TFJob {name!r} was "
                f"{'not created' if dry_run else 'deleted again'}: {e}"
            ) from None

    def get(self, name: str) -> JobSnapshot:
        obj = self.manifest(name)
        pods, _ = self._list(self._pod_lister(name), name)
        return build_snapshot(obj, pods)

    def list(self) -> list[JobSnapshot]:
        objs, _ = self._list(self._tfjob_lister())
        pods, _ = self._list(self._pod_lister())
        by_job: dict[str | None, list[dict]] = {}
        for pod in pods:
            by_job.setdefault(_job_label(pod), []).append(pod)
        snaps = [build_snapshot(o, by_job.get(o["metadata"]["name"], [])) for o in objs]
        snaps.sort(key=lambda s: s.name)
        snaps.sort(key=lambda s: s.created, reverse=True)
        return snaps

    def manifest(self, name: str) -> dict:
        return self._call(
            self._jobs.get_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, name, name=name
        )

    def logdir(self, name: str) -> str | None:
        """The job's ``pvc://CLAIM/SUBPATH`` logdir (what a Kubeflow Tensorboard reads), None without one."""
        return logdir_of(self.manifest(name))

    def tensorboard(self, name: str):
        """Kubeflow's ``Tensorboard`` for the job, owned by its TFJob (created once; asked again, the
        existing one). Raises TensorBoardUnavailable, with the one line saying what is missing,
        when the job has no PVC logdir or the cluster does not serve the Tensorboard CRD."""
        from ...errors import AlreadyExists
        from ...metrics import tensorboard as tb

        obj = self.manifest(name)
        logdir = logdir_of(obj)
        discovery = self._tensorboard_discovery() if logdir and logdir.startswith("pvc://") else {}
        missing = tb.missing_for_cluster_tensorboard(logdir, discovery)
        if missing is not None:
            raise tb.TensorBoardUnavailable(f"no TensorBoard for TFJob {name!r}: {missing}")
        assert logdir is not None
        body = tb.tensorboard_manifest(name, self.namespace, obj["metadata"].get("uid", ""), logdir)
        board = body["metadata"]["name"]
        try:
            self._call(
                self._jobs.create_namespaced_custom_object,
                tb.TENSORBOARD_GROUP,
                tb.TENSORBOARD_VERSION,
                self.namespace,
                TENSORBOARD_PLURAL,
                body,
                name=board,
            )
            created = True
        except AlreadyExists:
            created = False
        return tb.ClusterTensorBoard(name, self.namespace, board, logdir, created)

    def _tensorboard_discovery(self) -> dict:
        """``GET /apis/tensorboard.kubeflow.org/v1alpha1`` (an APIResourceList), ``{}`` when the
        cluster does not serve that group version."""
        from kubernetes.client.exceptions import ApiException

        from ...metrics.tensorboard import TENSORBOARD_GROUP, TENSORBOARD_VERSION

        try:
            answer = self._jobs.get_api_resources(
                TENSORBOARD_GROUP, TENSORBOARD_VERSION, _request_timeout=self.request_timeout
            )
        except ApiException as e:
            if e.status == 404:
                return {}
            raise self._translated(e, None) from None
        except api_failures() as e:
            raise self._translated(e, None) from None
        answer = self.connection.api_client.sanitize_for_serialization(answer)  # type: ignore[attr-defined]
        return answer if isinstance(answer, dict) else {}

    def delete(self, name: str) -> None:
        """Foreground deletion: the pods go first, then the TFJob; returns once it is gone
        (or after ``delete_timeout``, while the garbage collector still works on it)."""
        rv = self._existing_job(name)
        answer = self._delete_tfjob(name, FOREGROUND)
        if not ((answer or {}).get("metadata") or {}).get("deletionTimestamp"):
            return  # deleted at once (a Status, or the object as it was): nothing left to wait for
        deadline = time.monotonic() + self.delete_timeout
        with self._streams(("tfjob", self._tfjob_lister(name), rv)) as events:
            while (remaining := deadline - time.monotonic()) > 0:
                event = self._next_event(events, remaining, name)
                if event is None or event.gone:
                    return

    # -- watch ----------------------------------------------------------------------
    def watch(
        self, name: str | None = None, *, timeout: float | None = None, stop: Stop = None
    ) -> Iterator[JobSnapshot]:
        """One watch on the TFJob(s) and one on their pods, merged into snapshots as changes arrive."""
        jobs, job_rv = self._list(self._tfjob_lister(name), name)
        if name and not jobs:
            raise JobNotFound(name, self._where())
        pods, pod_rv = self._list(self._pod_lister(name), name)
        return self._watch(name, jobs, pods, job_rv, pod_rv, timeout, stop)

    def _watch(self, name, jobs, pods, job_rv, pod_rv, timeout, stop) -> Iterator[JobSnapshot]:
        deadline = None if timeout is None else time.monotonic() + timeout
        state = _WatchState(jobs, pods)
        initial = [state.snapshot(job_name) for job_name in state.newest_first()]
        if name and initial[0].finished:
            yield initial[0]
            return
        # Streams open before the first yield: changes while the caller looks at it queue up.
        with self._streams(
            ("tfjob", self._tfjob_lister(name), job_rv), ("pod", self._pod_lister(name), pod_rv)
        ) as events:
            yield from initial
            while not (stop and stop.is_set()):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                # With a stop event, wake now and then to look at it (a local check; nothing is sent).
                wait = remaining if stop is None else min(remaining if remaining is not None else 0.1, 0.1)
                event = self._next_event(events, wait, name)
                if event is None:
                    continue
                for job_name in state.apply(event):
                    if job_name not in state.jobs:
                        if name:
                            raise JobNotFound(name, f"{self._where()}: it was deleted")
                        continue
                    snap = state.changed(job_name)
                    if snap is None:
                        continue
                    if name and snap.finished:
                        # The pod stream may lag the job's: read the pods once more for the final picture.
                        final_pods, _ = self._list(self._pod_lister(name), name)
                        yield build_snapshot(state.jobs[job_name], final_pods)
                        return
                    yield snap

    # -- logs -------------------------------------------------------------------------
    def logs(
        self, name: str, replica: str | None = None, *, follow: bool = False, tail: int | None = None, stop: Stop = None
    ) -> Iterator[str]:
        """Lines of the ``tensorflow`` container of one replica's pod. Errors surface here, before iteration."""
        obj = self.manifest(name)
        replicas = spec_replicas(obj)
        rid = replica or default_replica_id(replicas)
        known = [model.replica_id(t, i) for t, i in replicas]
        if rid not in known:
            raise ReplicaNotFound(f"TFJob {name!r} has no replica {rid!r} (replicas: {', '.join(known) or 'none'})")
        pod = f"{name}-{rid}"
        if follow:
            return self._follow(name, rid, pod, tail, stop)
        resp = self._log_call(name, rid, pod, tail_lines=tail)
        return iter(resp.data.decode("utf-8", errors="replace").splitlines())

    def _log_call(self, name: str, rid: str, pod: str, **kwargs):
        from kubernetes.client.exceptions import ApiException

        try:
            return self._core.read_namespaced_pod_log(
                pod,
                self.namespace,
                container=model.DEFAULT_CONTAINER,
                _preload_content=False,
                _request_timeout=self.request_timeout,
                **{k: v for k, v in kwargs.items() if v is not None},
            )
        except ApiException as e:
            raise self._log_error(e, name, rid, pod) from None
        except api_failures() as e:
            raise self._translated(e, None) from None

    def _log_error(self, exc, name: str, rid: str, pod: str) -> KubeflowJupyterError:
        message = (status_body(exc) or {}).get("message", "")
        if exc.status == 404 and status_body(exc):
            return ReplicaNotFound(
                f"replica {rid} of TFJob {name!r} has no pod ({pod}) yet: the operator has not "
                "created it — try again in a moment, or use --follow to wait"
            )
        if exc.status == 400 and "waiting to start" in message:
            why = message.rsplit(":", 1)[-1].strip()
            return ReplicaNotStarted(
                f"replica {rid} of TFJob {name!r} has not started yet ({why}): "
                "no log to show — use --follow to wait for it"
            )
        return self._translated(exc, name)

    def _follow(self, name: str, rid: str, pod: str, tail: int | None, stop: threading.Event | None) -> Iterator[str]:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        if not self._wait_started(name, rid, pod, stop):
            return
        stream = watch.Watch()
        # A replica may print nothing for a long time: only the connect step has a short timeout.
        kwargs: dict[str, Any] = {
            "container": model.DEFAULT_CONTAINER,
            "_request_timeout": (self.request_timeout, LOG_IDLE_TIMEOUT),
        }
        if tail is not None:
            kwargs["tail_lines"] = tail
        with _cut_when_set(stop, stream):
            try:
                for line in stream.stream(self._core.read_namespaced_pod_log, pod, self.namespace, **kwargs):
                    if stop is not None and stop.is_set():
                        return
                    yield line
            except Exception as e:
                if stop is not None and stop.is_set():
                    return  # the connection was cut because we were told to stop: not a failure
                if isinstance(e, ApiException):
                    raise self._log_error(e, name, rid, pod) from None
                if isinstance(e, api_failures()):
                    raise self._translated(e, None) from None
                raise

    def _wait_started(self, name: str, rid: str, pod: str, stop: threading.Event | None = None) -> bool:
        """Block (watching the pod and its TFJob, not polling) until the tensorflow container has
        started or ended (True), or ``stop`` is set (False); give up with a clear error when the
        pod or the job goes away first."""
        pod_lister = functools.partial(
            self._core.list_namespaced_pod, self.namespace, field_selector=f"metadata.name={pod}"
        )
        pods, pod_rv = self._list(pod_lister, name)
        if pods and _container_started(pods[0]):
            return True
        try:
            job_rv = self._existing_job(name)
        except JobNotFound:
            raise JobNotFound(name, f"{self._where()}: it was deleted") from None
        with self._streams(("pod", pod_lister, pod_rv), ("tfjob", self._tfjob_lister(name), job_rv)) as events:
            while not (stop is not None and stop.is_set()):
                event = self._next_event(events, None if stop is None else STOP_CHECK_SECONDS, name)
                if event is None:
                    continue
                if event.source == "tfjob" and event.gone:
                    raise JobNotFound(name, f"{self._where()}: it was deleted")
                if event.source == "pod" and event.type == "DELETED":
                    raise ReplicaNotFound(
                        f"replica {rid} of TFJob {name!r}: its pod {pod} was deleted before it started"
                    )
                if event.source == "pod" and any(_container_started(o) for o in event.objects):
                    return True
            return False


@contextlib.contextmanager
def _cut_when_set(stop: threading.Event | None, stream) -> Iterator[None]:
    """While the block runs, a small thread stops the ``kubernetes.watch.Watch`` ``stream`` once
    ``stop`` is set: that shuts its connection down, so a read blocked on a silent log returns at
    once. It retries every STOP_CHECK_SECONDS, as the response may not exist yet on the first try."""
    if stop is None:
        yield
        return
    done = threading.Event()

    def cut() -> None:
        while not done.wait(STOP_CHECK_SECONDS):
            if stop.is_set():
                stream.stop()

    threading.Thread(target=cut, name="kfj-log-stop", daemon=True).start()
    try:
        yield
    finally:
        done.set()


def _container_started(pod: dict) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    for cs in status.get("containerStatuses") or []:
        if cs.get("name") == model.DEFAULT_CONTAINER:
            state = cs.get("state") or {}
            return "running" in state or "terminated" in state or "terminated" in (cs.get("lastState") or {})
    return False


class _WatchState:
    """The TFJobs and pods seen so far, and the last snapshot yielded per job."""

    def __init__(self, jobs: list[dict], pods: list[dict]):
        self.jobs = {o["metadata"]["name"]: o for o in jobs}
        self.pods = {p["metadata"]["name"]: p for p in pods}
        self._last: dict[str, dict] = {}

    def newest_first(self) -> list[str]:
        return [
            o["metadata"]["name"]
            for o in sorted(
                self.jobs.values(),
                key=lambda o: (o["metadata"].get("creationTimestamp") or "", o["metadata"]["name"]),
                reverse=True,
            )
        ]

    def snapshot(self, job_name: str) -> JobSnapshot:
        pods = [p for p in self.pods.values() if _job_label(p) == job_name]
        snap = build_snapshot(self.jobs[job_name], pods)
        self._last[job_name] = snapshot_key(snap)
        return snap

    def changed(self, job_name: str) -> JobSnapshot | None:
        before = self._last.get(job_name)
        snap = self.snapshot(job_name)
        return None if snapshot_key(snap) == before else snap

    def apply(self, event: StreamEvent) -> list[str]:
        """Fold one event in; return the jobs it may have changed."""
        store = self.jobs if event.source == "tfjob" else self.pods
        if event.type == RELIST:
            before = list(store.values())
            store.clear()
            store.update({o["metadata"]["name"]: o for o in event.objects})
            touched = {self._job_of(event.source, o["metadata"]["name"], o) for o in [*before, *event.objects]}
            return sorted(job for job in touched if job is not None)
        (obj,) = event.objects
        key = obj["metadata"]["name"]
        job = self._job_of(event.source, key, obj)
        if event.type == "DELETED":
            store.pop(key, None)
        else:
            store[key] = obj
        return [job] if job else []

    def _job_of(self, source: str, key: str, obj: dict | None = None) -> str | None:
        if source == "tfjob":
            return key
        obj = obj or self.pods.get(key)
        return _job_label(obj) if obj else None


def _job_label(pod: dict) -> str | None:
    """The TFJob a pod belongs to, by the operator's label."""
    return (pod.get("metadata", {}).get("labels") or {}).get(model.LABEL_JOB_NAME)


def _describe(exc: BaseException) -> str:
    """An API failure in a few words for the debug log: ``403 Forbidden``, ``MaxRetryError``."""
    status = getattr(exc, "status", None)
    return f"{status} {getattr(exc, 'reason', '')}".strip() if status else type(exc).__name__
