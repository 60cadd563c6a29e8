"""Jupyter server extension: the REST API and push channel behind the lab's TFJobs sidebar.

Enabled by ``jupyter-config/server-config/kubeflow_jupyter.json`` (installed by the
wheel into ``etc/jupyter/jupyter_server_config.d``); routes live under
``<base_url>/kubeflow-jupyter/api/`` (see :mod:`.handlers`).
"""

from __future__ import annotations


def _load_jupyter_server_extension(serverapp) -> None:
    from .handlers import setup_handlers
    from .service import JobService

    service = JobService()
    setup_handlers(serverapp.web_app, service)
    serverapp.log.info("kubeflow-jupyter: TFJob API at %skubeflow-jupyter/api/", serverapp.base_url)
