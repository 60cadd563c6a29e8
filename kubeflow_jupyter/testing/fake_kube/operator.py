"""A simulated training-operator (plus the kubelet's part): turns stored TFJobs into pods
with the operator's names, labels, ownerReferences and TF_CONFIG, runs them by a script,
and writes the TFJob status with :mod:`kubeflow_jupyter.tfjob.rules` — the same rules
the local backend follows, so the fake never re-implements them.

Everything runs as asyncio tasks on the fake's event loop; steps take milliseconds.

A pod that runs a run-job's payload (a configMap volume, and a container running
``python -u <mount>/_kfj/bootstrap.py``) runs for real, as the kubelet would run it: once its
ConfigMap exists (the kubelet waits for it to mount), the ConfigMap's items are materialised
as files in a scratch directory (key → path, mode), the emptyDir volumes as empty
directories, and the container's command runs as a local process with this interpreter, the
container's env and TF_CONFIG; its output is the container's log and its exit code the
container's. (The TF_CONFIG's addresses are cluster DNS names, which do not resolve here:
code that only reads TF_CONFIG runs as it would in a pod; a real TensorFlow cluster does not.)
"""

from __future__ import annotations

import asyncio
import base64
import copy
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

from ...errors import SpecError
from ...tfjob import model, rules
from ...tfjob.spec import parse_tfjob
from ...tfjob.status import (
    PENDING,
    POD_FAILED,
    POD_RUNNING,
    POD_SUCCEEDED,
    Condition,
    ReplicaState,
)
from ...tfjob.tfconfig import cluster_dns_resolver, tf_config_json
from .logs import LogBook
from .store import ADDED, CONFIGMAPS, DELETED, PODS, TENSORBOARDS, TFJOBS, Event, Store, timestamp

OPERATOR_NAME = "tfjob-controller"
NODE_NAME = "fake-node-1"
BOOTSTRAP_SUFFIX = "/_kfj/bootstrap.py"
#: How long a pod waits for its ConfigMap to exist before it stays ContainerCreating for good.
CONFIGMAP_WAIT_SECONDS = 30.0


@dataclass
class ReplicaScript:
    """How one replica behaves. ``exit_codes``: one per run of its container (restarts take
    the next; the last one repeats). ``logs``: lines each run prints (default: a few lines
    naming the replica). ``pending``: never scheduled (stays Pending, Unschedulable).
    ``never_starts``: scheduled, but the container stays waiting with ``waiting_reason``
    (e.g. ``ImagePullBackOff``)."""

    exit_codes: list[int] = field(default_factory=lambda: [0])
    run_seconds: float | None = None
    logs: list[str] | None = None
    pending: bool = False
    never_starts: bool = False
    waiting_reason: str = "ContainerCreating"

    def exit_code(self, run: int) -> int:
        return self.exit_codes[min(run, len(self.exit_codes) - 1)]

    def lines(self, pod: str, run: int) -> list[str]:
        if self.logs is not None:
            return list(self.logs)
        return [f"{pod}: run {run} starting", f"{pod}: TF_CONFIG read", f"{pod}: run {run} exiting"]


def _canonical_type(label_value: str) -> str:
    return {t.lower(): t for t in model.REPLICA_TYPES}.get(label_value, label_value)


class SimulatedOperator:
    def __init__(self, store: Store, logs: LogBook, *, step: float = 0.01, run_seconds: float = 0.05):
        self.store = store
        self.logs = logs
        self.step = step
        self.run_seconds = run_seconds
        self.scripts: dict[tuple[str, str, str], ReplicaScript] = {}  # (namespace, job, "worker-1")
        self._tasks: dict[tuple[str, str], set[asyncio.Task]] = {}  # per job
        self._pod_tasks: dict[tuple[str, str], asyncio.Task] = {}  # per pod
        # per job: the replicas ("worker-0") waiting to run again (CrashLoopBackOff, or a pod being recreated)
        self._restarting: dict[tuple[str, str], set[str]] = {}
        self._views: dict[tuple[str, object], model.TFJob | None] = {}
        self._job_pods: dict[tuple[str, str], set[str]] = {}  # pods this operator created, per job
        self.paused = False
        store.subscribe(self._on_event)

    def shutdown(self) -> None:
        """Cancel every pending step (the fake is stopping)."""
        for tasks in self._tasks.values():
            for task in tasks:
                task.cancel()

    def script(self, namespace: str, job: str, replica: str, script: ReplicaScript) -> None:
        self.scripts[(namespace, job, replica)] = script

    # -- reacting to the store -------------------------------------------------
    def _on_event(self, event: Event) -> None:
        if event.resource != TFJOBS or self.paused:
            return
        meta = event.obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if event.type == ADDED:
            self._spawn(key, self._start_job(key))
        elif event.type == DELETED:
            self._restarting.pop(key, None)
            for task in self._tasks.pop(key, set()):
                task.cancel()

    def _spawn(self, key: tuple[str, str], coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.setdefault(key, set()).add(task)
        task.add_done_callback(lambda t: self._tasks.get(key, set()).discard(t))
        return task

    def _view(self, obj: dict) -> model.TFJob | None:
        """The operator's typed view of a stored TFJob, parsed once per spec generation."""
        meta = obj["metadata"]
        key = (meta["uid"], meta.get("generation"))
        if key not in self._views:
            try:
                self._views[key] = parse_tfjob(obj).job
            except SpecError:
                self._views[key] = None
        return self._views[key]

    async def _start_job(self, key: tuple[str, str]) -> None:
        ns, name = key
        obj = self.store.find(TFJOBS, ns, name)
        job = self._view(obj) if obj else None
        if job is None:
            return
        now = timestamp()
        status = {
            "conditions": [vars(c) for c in rules.created_condition(job, now)],
            "replicaStatuses": rules.replica_statuses(job, []),
            "startTime": now,
        }
        self._write_status(ns, name, status)
        for rtype, index in job.replicas():
            self._start_pod(job, obj, rtype, index, run=0)
        if job.run_policy.active_deadline_seconds is not None:
            self._spawn(key, self._deadline(key, job.run_policy.active_deadline_seconds))

    async def _deadline(self, key: tuple[str, str], seconds: int) -> None:
        await asyncio.sleep(seconds)
        self.reconcile(*key)

    # -- pods ---------------------------------------------------------------------
    def _pod_manifest(self, job: model.TFJob, owner: dict, rtype: str, index: int) -> dict:
        spec = job.replica_specs[rtype]
        template = copy.deepcopy(spec.template)
        tmeta = template.get("metadata") or {}
        ns = owner["metadata"]["namespace"]
        labels = dict(tmeta.get("labels") or {})
        labels.update(
            {
                model.LABEL_JOB_NAME: job.name,
                model.LABEL_OPERATOR_NAME: OPERATOR_NAME,
                model.LABEL_REPLICA_TYPE: rtype.lower(),
                model.LABEL_REPLICA_INDEX: str(index),
            }
        )
        is_master = rtype == job.chief_type if job.chief_type else (rtype == "Worker" and index == 0)
        if is_master:
            labels[model.LABEL_JOB_ROLE] = "master"
        pod_spec = template.get("spec") or {}
        tfc = tf_config_json(job, rtype, index, cluster_dns_resolver(job, ns))
        for c in pod_spec.get("containers") or []:
            if c.get("name") == model.DEFAULT_CONTAINER and tfc is not None:
                c["env"] = [*(c.get("env") or []), {"name": "TF_CONFIG", "value": tfc}]
        pod_spec["restartPolicy"] = "Never" if spec.restart_policy == "ExitCode" else spec.restart_policy
        pod_spec.setdefault("schedulerName", "default-scheduler")
        pod_spec["hostname"] = model.pod_name(job.name, rtype, index)
        pod_spec["subdomain"] = job.name
        return {
            "metadata": {
                "name": model.pod_name(job.name, rtype, index),
                "namespace": ns,
                "labels": labels,
                "annotations": dict(tmeta.get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": model.API_VERSION,
                        "kind": model.KIND,
                        "name": job.name,
                        "uid": owner["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": pod_spec,
            "status": {"phase": PENDING, "qosClass": "BestEffort"},
        }

    def _start_pod(self, job: model.TFJob, owner: dict, rtype: str, index: int, run: int) -> None:
        ns = owner["metadata"]["namespace"]
        pod = self.store.create(PODS, self._pod_manifest(job, owner, rtype, index))
        key = (ns, pod["metadata"]["name"])
        self._job_pods.setdefault((ns, job.name), set()).add(key[1])
        self.logs.reset(ns, key[1])
        self._pod_tasks[key] = self._spawn((ns, job.name), self._run_pod(job, pod, rtype, index, run))

    def _patch_pod(self, ns: str, name: str, change: Callable[..., None], *args: object) -> dict | None:
        """``change(pod, *args)`` on the stored pod, then store it."""
        pod = self.store.find(PODS, ns, name)
        if pod is None:
            return None
        change(pod, *args)
        return self.store.update(PODS, pod, check_rv=False)

    async def _run_pod(self, job: model.TFJob, pod: dict, rtype: str, index: int, run: int) -> None:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        rid = model.replica_id(rtype, index)
        script = self.scripts.get((ns, job.name, rid), ReplicaScript())
        container = model.DEFAULT_CONTAINER
        await asyncio.sleep(self.step)
        if script.pending:

            def unschedulable(p):
                p["status"]["conditions"] = [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/1 nodes are available: 1 Insufficient cpu.",
                        "lastTransitionTime": timestamp(),
                    }
                ]

            self._patch_pod(ns, name, unschedulable)
            return

        def scheduled(p):
            p["spec"]["nodeName"] = NODE_NAME
            p["status"].update(
                {
                    "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": timestamp()}],
                    "hostIP": "10.0.0.1",
                    "podIP": f"10.1.0.{(index % 250) + 2}",
                    "startTime": timestamp(),
                    "containerStatuses": [
                        {
                            "name": c["name"],
                            "image": c.get("image", ""),
                            "imageID": "",
                            "ready": False,
                            "restartCount": 0,
                            "started": False,
                            "state": {"waiting": {"reason": script.waiting_reason}},
                        }
                        for c in p["spec"].get("containers") or []
                    ],
                }
            )

        self._patch_pod(ns, name, scheduled)
        self.reconcile(ns, job.name)
        if script.never_starts:
            return
        payload = _payload_container(pod)
        if payload is not None and not await self._configmaps_mounted(ns, pod):
            return  # the kubelet keeps the container waiting (FailedMount)
        await asyncio.sleep(self.step)
        spec = job.replica_specs[rtype]
        while True:
            started = timestamp()
            self._patch_pod(ns, name, _running, started)
            self._restarting.get((ns, job.name), set()).discard(rid)
            self.reconcile(ns, job.name)
            if payload is not None:
                code = await self._run_process(ns, name, pod, payload)
            else:
                lines = script.lines(name, run)
                duration = script.run_seconds if script.run_seconds is not None else self.run_seconds
                for line in lines:
                    self.logs.append(ns, name, container, line)
                    await asyncio.sleep(duration / max(len(lines), 1))
                code = script.exit_code(run)
            outcome = rules.exit_outcome(spec.restart_policy, code)
            terminated = {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": started,
                    "finishedAt": timestamp(),
                    "containerID": f"containerd://{name}-{run}",
                }
            }
            self.logs.finish(ns, name, container)
            run += 1
            if outcome == rules.RESTART and spec.restart_policy in ("Always", "OnFailure"):
                self._patch_pod(ns, name, _restarted, container, terminated)
                self._restarting.setdefault((ns, job.name), set()).add(rid)
                self.reconcile(ns, job.name)
                self.logs.reset(ns, name)
                await asyncio.sleep(self.step)
                continue
            self._patch_pod(ns, name, _exited, code, terminated)
            if outcome == rules.RESTART:  # ExitCode policy, retryable code: the operator recreates the pod
                self._restarting.setdefault((ns, job.name), set()).add(rid)
                self.reconcile(ns, job.name)
                self.store.delete(PODS, ns, name)
                owner = self.store.find(TFJOBS, ns, job.name)
                if owner is not None and not rules.is_finished(self._conditions(owner)):
                    await asyncio.sleep(self.step)
                    self._start_pod(job, owner, rtype, index, run)
            else:
                self.reconcile(ns, job.name)
            return

    # -- pods that run a payload for real -------------------------------------------------
    def _configmap_volumes(self, pod: dict) -> dict[str, dict]:
        return {
            v["name"]: v["configMap"]
            for v in (pod["spec"].get("volumes") or [])
            if isinstance(v.get("configMap"), dict)
        }

    async def _configmaps_mounted(self, ns: str, pod: dict) -> bool:
        names = [cm.get("name") for cm in self._configmap_volumes(pod).values() if not cm.get("optional")]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONFIGMAP_WAIT_SECONDS
        while not all(self.store.peek(CONFIGMAPS, ns, n) is not None for n in names):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(self.step)
        return True

    def _materialise(self, ns: str, pod: dict, root: str) -> dict[str, str]:
        """The pod's configMap and emptyDir volumes as directories under ``root``: volume name → path."""
        paths: dict[str, str] = {}
        for volume in pod["spec"].get("volumes") or []:
            path = paths[volume["name"]] = os.path.join(root, volume["name"])
            os.makedirs(path)
            source = volume.get("configMap")
            if not isinstance(source, dict):
                continue
            cm = self.store.peek(CONFIGMAPS, ns, source.get("name", "")) or {}
            contents = {k: v.encode("utf-8") for k, v in (cm.get("data") or {}).items()}
            contents.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
            items = source.get("items") or [{"key": k, "path": k} for k in contents]
            for item in items:
                target = os.path.join(path, item["path"])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    f.write(contents.get(item["key"], b""))
                os.chmod(target, item.get("mode", source.get("defaultMode", 0o644)) & 0o777)
        return paths

    async def _run_process(self, ns: str, name: str, pod: dict, container: dict) -> int:
        """Run the container's command as a local process over the materialised volumes; its
        output becomes the container's log. Returns the exit code."""
        root = tempfile.mkdtemp(prefix=f"fake-kube-{name}-")
        process = None
        try:
            volumes = self._materialise(ns, pod, root)
            mounts = sorted(
                ((m["mountPath"].rstrip("/"), volumes[m["name"]]) for m in container.get("volumeMounts") or []),
                key=lambda m: -len(m[0]),
            )

            def local(path: str) -> str:
                for mount, there in mounts:
                    if path == mount or path.startswith(mount + "/"):
                        return there + path[len(mount) :]
                return path

            argv = [local(a) for a in container.get("command") or []] + [local(a) for a in container.get("args") or []]
            if argv and argv[0] in ("python", "python3"):
                argv[0] = sys.executable
            env = {**os.environ, **{e["name"]: str(e.get("value", "")) for e in container.get("env") or []}}
            cwd = local(container.get("workingDir") or root)
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                limit=1024 * 1024,
            )
            assert process.stdout is not None
            async for raw in process.stdout:
                self.logs.append(ns, name, model.DEFAULT_CONTAINER, raw.decode("utf-8", "replace").rstrip("\n"))
            return await process.wait()
        except OSError as e:
            self.logs.append(ns, name, model.DEFAULT_CONTAINER, f"exec failed: {e}")
            return 128
        finally:
            if process is not None and process.returncode is None:
                process.kill()
            shutil.rmtree(root, ignore_errors=True)

    # -- status ------------------------------------------------------------------------
    @staticmethod
    def _conditions(obj: dict) -> list[Condition]:
        return [Condition.from_dict(c) for c in (obj.get("status") or {}).get("conditions") or []]

    def _pods_of(self, ns: str, job: str) -> list[dict]:
        """The job's pods as stored (read only)."""
        pods = (self.store.peek(PODS, ns, name) for name in sorted(self._job_pods.get((ns, job), ())))
        return [p for p in pods if p is not None]

    def _replica_states(self, ns: str, job: str) -> list[ReplicaState]:
        states = []
        for pod in self._pods_of(ns, job):
            labels = pod["metadata"]["labels"]
            cs = next(
                (c for c in pod["status"].get("containerStatuses") or [] if c["name"] == model.DEFAULT_CONTAINER), {}
            )
            term = (cs.get("state") or {}).get("terminated") or {}
            states.append(
                ReplicaState(
                    type=_canonical_type(labels[model.LABEL_REPLICA_TYPE]),
                    index=int(labels[model.LABEL_REPLICA_INDEX]),
                    phase=pod["status"].get("phase", PENDING),
                    restarts=int(cs.get("restartCount", 0)),
                    exit_code=term.get("exitCode"),
                )
            )
        return states

    def reconcile(self, ns: str, name: str) -> None:
        obj = self.store.find(TFJOBS, ns, name)
        job = self._view(obj) if obj else None
        if job is None or obj["metadata"].get("deletionTimestamp"):
            return
        status = obj.get("status") or {}
        was_finished = rules.is_finished(self._conditions(obj))
        update = rules.update_job_status(
            job,
            self._replica_states(ns, name),
            self._conditions(obj),
            start_time=status.get("startTime"),
            restarting=tuple(self._restarting.get((ns, name), ())),
        )
        new = dict(status, conditions=[vars(c) for c in update.conditions], replicaStatuses=update.replica_statuses)
        if update.finished and not was_finished:
            new["completionTime"] = update.completion_time
        self._write_status(ns, name, new)
        if update.finished and not was_finished:
            self._finish(job, ns)

    def _finish(self, job: model.TFJob, ns: str) -> None:
        self._restarting.pop((ns, job.name), None)
        for r in rules.replicas_to_stop(job, self._replica_states(ns, job.name)):
            pod = model.pod_name(job.name, r.type, r.index)
            task = self._pod_tasks.pop((ns, pod), None)
            if task:
                task.cancel()
            if self.store.find(PODS, ns, pod):
                self.store.delete(PODS, ns, pod)
        ttl = job.run_policy.ttl_seconds_after_finished
        if ttl is not None:
            asyncio.get_running_loop().call_later(ttl, self._delete_job_now, ns, job.name)

    def _delete_job_now(self, ns: str, name: str) -> None:
        if self.store.find(TFJOBS, ns, name):
            self.store.delete(TFJOBS, ns, name)
            self.collect_garbage(ns, name)

    def _write_status(self, ns: str, name: str, status: dict) -> None:
        obj = self.store.find(TFJOBS, ns, name)
        if obj is not None:
            obj["status"] = status
            self.store.update(TFJOBS, obj, status_only=True, check_rv=False)

    def collect_garbage(self, ns: str, job: str) -> None:
        """What the garbage collector does for pods whose owner is gone."""
        for name in [p["metadata"]["name"] for p in self._pods_of(ns, job)]:
            task = self._pod_tasks.pop((ns, name), None)
            if task:
                task.cancel()
            self.store.delete(PODS, ns, name)
            self.logs.finish(ns, name, model.DEFAULT_CONTAINER)
        self._job_pods.pop((ns, job), None)
        for resource in (CONFIGMAPS, TENSORBOARDS):
            for obj in self.store.list(resource, ns, lambda o: _owned_by_job(o, job)):
                owner = self.store.peek(TFJOBS, ns, job)
                if owner is None or owner["metadata"].get("deletionTimestamp") or not _owned_by_job(obj, job, owner):
                    self.store.delete(resource, ns, obj["metadata"]["name"])


def _running(pod: dict, started: str) -> None:
    pod["status"]["phase"] = POD_RUNNING
    for cs in pod["status"]["containerStatuses"]:
        cs.update(ready=True, started=True, state={"running": {"startedAt": started}})


def _restarted(pod: dict, container: str, terminated: dict) -> None:
    for cs in pod["status"]["containerStatuses"]:
        if cs["name"] == container:
            cs.update(
                lastState=terminated,
                restartCount=cs["restartCount"] + 1,
                ready=False,
                started=False,
                state={"waiting": {"reason": "CrashLoopBackOff"}},
            )


def _exited(pod: dict, code: int, terminated: dict) -> None:
    pod["status"]["phase"] = POD_SUCCEEDED if code == 0 else POD_FAILED
    for cs in pod["status"]["containerStatuses"]:
        cs.update(ready=False, started=False, state=terminated)


def _owned_by_job(obj: dict, job: str, owner: dict | None = None) -> bool:
    """Whether ``obj`` has an ownerReference to the TFJob ``job`` (with ``owner``'s uid, if given)."""
    return any(
        r.get("kind") == model.KIND
        and r.get("name") == job
        and (owner is None or r.get("uid") == owner["metadata"].get("uid"))
        for r in obj["metadata"].get("ownerReferences") or []
    )


def _payload_container(pod: dict) -> dict | None:
    """The ``tensorflow`` container when it runs a run-job's bootstrap from a mounted volume."""
    for container in pod["spec"].get("containers") or []:
        command = [*(container.get("command") or []), *(container.get("args") or [])]
        if container.get("name") == model.DEFAULT_CONTAINER and any(
            isinstance(a, str) and a.endswith(BOOTSTRAP_SUFFIX) for a in command
        ):
            return container
    return None
