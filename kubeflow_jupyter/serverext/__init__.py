"""Jupyter server extension: the REST API and push channel behind the lab's TFJobs sidebar.

Enabled by ``jupyter-config/server-config/kubeflow_jupyter.json`` (installed by the
wheel into ``etc/jupyter/jupyter_server_config.d``); routes live under
``<base_url>/kubeflow-jupyter/api/`` (see :mod:`.handlers`). Its settings are
:class:`KubeflowJupyter`'s traits, e.g. ``c.KubeflowJupyter.resync_seconds = 30`` in
``jupyter_server_config.py``.
"""

from __future__ import annotations

from traitlets import Float, Int, default
from traitlets.config import LoggingConfigurable


class KubeflowJupyter(LoggingConfigurable):
    """How the server extension watches jobs (as kubespawner's reflector exposes its timeouts)."""

    resync_seconds = Float(
        config=True,
        help=(
            "Seconds between fresh lists of the namespace's jobs behind the sidebars' push channel: each "
            "one restarts the watch and catches what a watch cannot see (a job deleted by another process, "
            "a dropped cluster watch)."
        ),
    )
    request_timeout = Float(
        config=True, help=("Seconds one Kubernetes API request may take (Kubernetes backend only).")
    )
    watch_timeout = Int(
        config=True,
        help=(
            "Seconds one Kubernetes watch request lives before it is renewed from its resourceVersion "
            "(Kubernetes backend only): bounds how long a silently dropped connection goes unnoticed."
        ),
    )

    # The defaults live where they are used; read there, when first needed.
    @default("resync_seconds")
    def _default_resync_seconds(self) -> float:
        from .feed import RESYNC_SECONDS

        return RESYNC_SECONDS

    @default("request_timeout")
    def _default_request_timeout(self) -> float:
        from ..backends.kubernetes.backend import DEFAULT_REQUEST_TIMEOUT

        return DEFAULT_REQUEST_TIMEOUT

    @default("watch_timeout")
    def _default_watch_timeout(self) -> int:
        from ..backends.kubernetes.backend import DEFAULT_WATCH_TIMEOUT

        return DEFAULT_WATCH_TIMEOUT

    def job_service(self):
        """The :class:`~.service.JobService` these settings describe."""
        from functools import partial

        from ..client import TFJobClient
        from .service import JobService

        client_factory = partial(TFJobClient, request_timeout=self.request_timeout, watch_timeout=self.watch_timeout)
        return JobService(client_factory, resync_seconds=self.resync_seconds)


def _load_jupyter_server_extension(serverapp) -> None:
    from .handlers import setup_handlers

    settings = KubeflowJupyter(parent=serverapp)
    service = settings.job_service()
    setup_handlers(serverapp.web_app, service)
    serverapp.web_app.settings["kubeflow_jupyter_service"] = service  # for other extensions and tests to find
    serverapp.log.info(
        "kubeflow-jupyter: TFJob API at %skubeflow-jupyter/api/ (resync every %ss)",
        serverapp.base_url,
        settings.resync_seconds,
    )
