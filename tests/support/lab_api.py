"""Calls to the lab extension's REST API (``/kubeflow-jupyter/api/...``) through jupyter_server's
``jp_fetch`` fixture."""

from __future__ import annotations

import json


async def fetch_json(jp_fetch, *parts, **kwargs):
    """(status, JSON body) without raising on error statuses."""
    response = await jp_fetch("kubeflow-jupyter", "api", *parts, raise_error=False, **kwargs)
    return response.code, (json.loads(response.body) if response.body else None)


async def submit(jp_fetch, path: str) -> dict:
    """POST the TFJob file at ``path`` (relative to the server's root); its snapshot once created."""
    code, body = await fetch_json(
        jp_fetch, "jobs", method="POST", body=json.dumps({"path": path}), headers={"Content-Type": "application/json"}
    )
    assert code == 201, body
    return body
