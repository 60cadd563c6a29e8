"""``FakeKubeCluster``: the fake API server + simulated training-operator on their own thread
and event loop, bound to 127.0.0.1 on a random port, reached through a generated kubeconfig
so that clients run their real configuration-loading path.

    with FakeKubeCluster(namespace="team-a") as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        cluster.script("mnist", "worker-1", exit_codes=[1, 0])   # worker 1 fails once
        ...                                                       # any client, kubectl included

Given ValidatingAdmissionPolicies (``admission_policies=`` or :meth:`add_admission_policies`,
e.g. the objects ``kubectl kustomize jupyterhub_config/k8s`` renders), TFJob writes are checked
against them as kube-apiserver does (CEL by cel-python; see ``admission.py``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

import yaml

from ...tfjob.model import DEFAULT_NAMESPACE
from .operator import ReplicaScript
from .server import ApiServer, DenyRule, Fault, RequestRecord
from .store import PODS, TENSORBOARDS, TFJOBS
from .tls import make_serving_cert

T = TypeVar("T")


class FakeKubeCluster:
    def __init__(
        self,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        crd_installed: bool = True,
        step: float = 0.01,
        run_seconds: float = 0.05,
        bookmark_interval: float = 1.0,
        default_watch_timeout: float = 1800.0,
        admission_policies: Iterable[dict] = (),
    ):
        """``step``: seconds between the operator's and kubelet's moves; ``run_seconds``: how long a
        container runs unless scripted; ``default_watch_timeout``: the server's watch timeout when the
        client sends none (kube-apiserver: 30-60 min); ``admission_policies``: manifests among which the
        ValidatingAdmissionPolicy/-Binding objects are enforced on TFJob writes (others are ignored)."""
        self.namespace = namespace
        self.server = ApiServer(
            crd_installed=crd_installed,
            step=step,
            run_seconds=run_seconds,
            bookmark_interval=bookmark_interval,
            default_watch_timeout=default_watch_timeout,
        )
        self.server.admission.add(admission_policies)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-kube-apiserver", daemon=True)
        self._runner = None
        self.port = 0
        self.tls = make_serving_cert()

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> FakeKubeCluster:
        from aiohttp import web

        self._thread.start()

        async def serve() -> int:
            # Like the real server, notice clients that hang up: their watch handlers end at once.
            self._runner = web.AppRunner(
                self.server.app(), access_log=None, handle_signals=False, handler_cancellation=True
            )
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls.server_context())
            await site.start()
            return site._server.sockets[0].getsockname()[1]

        self.port = self._run(serve())
        self.server.address = f"127.0.0.1:{self.port}"
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self.call(self.server.close_streams)
            self.call(self.server.operator.shutdown)
            self._run(self._runner.cleanup())
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> FakeKubeCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _run(self, coro) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def call(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """Run ``fn`` on the server's loop (the only thread that touches its state) and return its result."""
        future: Future = Future()

        def run() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as e:  # handed back to the calling thread
                future.set_exception(e)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    # -- identities -------------------------------------------------------------------
    def add_user(self, user: str) -> str:
        """A bearer token that authenticates as ``user`` (e.g. ``system:serviceaccount:ns:sa``)."""
        token = secrets.token_hex(16)
        self.call(self.server.tokens.__setitem__, token, user)
        return token

    def write_kubeconfig(
        self,
        path: str | os.PathLike,
        *,
        user: str | None = None,
        namespace: str | None = None,
        context: str = "fake-cluster",
        server: str | None = None,
        ca_pem: bytes | None = None,
    ) -> Path:
        """A kubeconfig (mode 0600) whose current context reaches this server as ``user``
        (default: the ``jupyter`` service account of the namespace). ``server``/``ca_pem``
        point it elsewhere or at another CA (to test unreachable servers and TLS failures)."""
        namespace = namespace or self.namespace
        user = user or f"system:serviceaccount:{namespace}:jupyter"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [
                {
                    "name": context,
                    "cluster": {
                        "server": server or self.url,
                        "certificate-authority-data": base64.b64encode(ca_pem or self.tls.ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": f"{context}-user", "user": {"token": self.add_user(user)}}],
            "contexts": [
                {"name": context, "context": {"cluster": context, "user": f"{context}-user", "namespace": namespace}}
            ],
            "current-context": context,
        }
        path = Path(path)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        path.chmod(0o600)
        return path

    # -- scripting the operator and the kubelet -------------------------------------------
    def script(self, job: str, replica: str, *, namespace: str | None = None, **behaviour) -> None:
        """How replica ``"worker-1"`` of ``job`` behaves: see :class:`ReplicaScript`."""
        self.call(self.server.operator.script, namespace or self.namespace, job, replica, ReplicaScript(**behaviour))

    def pause_operator(self, paused: bool = True) -> None:
        """While paused, new TFJobs are stored but nothing acts on them (no operator running)."""
        self.call(setattr, self.server.operator, "paused", paused)

    # -- fault injection ----------------------------------------------------------------------
    def deny(
        self, verb: str | None, resource: str, *, group: str = "", namespace: str | None = None, user: str | None = None
    ) -> None:
        """RBAC: forbid ``verb`` (None: all) on ``resource`` (``"tfjobs"``, ``"pods/log"``) in ``group``."""
        self.call(self.server.deny_rules.append, DenyRule(verb, resource, group, namespace, user))

    def allow_all(self) -> None:
        self.call(self.server.deny_rules.clear)

    # -- admission ------------------------------------------------------------------------------
    def add_admission_policies(self, objects: Iterable[dict]) -> None:
        """Enforce the ValidatingAdmissionPolicy/-Binding objects among ``objects`` from now on."""
        objects = list(objects)
        self.call(self.server.admission.add, objects)

    def install_tensorboard_crd(self, installed: bool = True) -> None:
        """Serve Kubeflow's ``tensorboard.kubeflow.org/v1alpha1`` Tensorboard (discovery and CRUD) from now on."""
        self.call(setattr, self.server, "tensorboard_installed", installed)

    def label_namespace(self, namespace: str, labels: dict[str, str]) -> None:
        """Labels a binding's namespaceSelector sees (kubernetes.io/metadata.name is always there)."""
        self.call(self.server.namespace_labels.__setitem__, namespace, dict(labels))

    def fail_next(
        self,
        count: int = 1,
        *,
        code: int = 500,
        method: str | None = None,
        path_contains: str | None = None,
        message: str = "injected fault",
    ) -> None:
        self.call(self.server.faults.append, Fault(count, code, method, path_contains, message))

    def drop_watches(self) -> int:
        return self.call(self.server.drop_watches)

    def compact(self) -> None:
        """etcd compaction: watches from an older resourceVersion now get ``410 Expired``."""
        self.call(self.server.store.compact)

    # -- inspection -------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        return self.call(lambda: list(self.server.requests))

    def tfjob(self, name: str, namespace: str | None = None) -> dict | None:
        return self.call(self.server.store.find, TFJOBS, namespace or self.namespace, name)

    def pods(self, job: str | None = None, namespace: str | None = None) -> list[dict]:
        return self.call(
            self.server.store.list,
            PODS,
            namespace or self.namespace,
            lambda p: job is None or p["metadata"]["labels"].get("training.kubeflow.org/job-name") == job,
        )

    def tensorboards(self, namespace: str | None = None) -> list[dict]:
        return self.call(self.server.store.list, TENSORBOARDS, namespace or self.namespace)

    def create_tfjob(self, manifest: dict, namespace: str | None = None) -> dict:
        """Store a TFJob directly, through the same admission as a POST (for seeding many jobs fast)."""
        return self.call(lambda: self.server._create(namespace or self.namespace, dict(manifest), False))

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Block until ``condition()`` (evaluated on the server's loop) holds; TimeoutError otherwise."""

        async def until() -> None:
            while not condition():
                await asyncio.sleep(0.005)

        asyncio.run_coroutine_threadsafe(asyncio.wait_for(until(), timeout), self._loop).result()
