"""Discovery documents and server-side Table printing, enough for kubectl and the clients."""

from __future__ import annotations

from datetime import UTC, datetime

from .store import CONFIGMAPS, PODS, TENSORBOARDS, TFJOBS, Resource

VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0",
    "gitCommit": "fake",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T07:28:49Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def api_versions(address: str) -> dict:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group(name: str, version: str = "v1") -> dict:
    gv = {"groupVersion": f"{name}/{version}", "version": version}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


def api_group_list(crd_installed: bool, tensorboard_installed: bool = False) -> dict:
    groups = [_group(TFJOBS.group)] if crd_installed else []
    if tensorboard_installed:
        groups.append(_group(TENSORBOARDS.group, TENSORBOARDS.version))
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(name: str, version: str = "v1") -> dict:
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, version)}


def _resource(r: Resource, short: list[str] | None = None, categories: list[str] | None = None) -> list[dict]:
    main = {"name": r.plural, "singularName": r.kind.lower(), "namespaced": True, "kind": r.kind, "verbs": _VERBS}
    if short:
        main["shortNames"] = short
    if categories:
        main["categories"] = categories
    status = {
        "name": f"{r.plural}/status",
        "singularName": "",
        "namespaced": True,
        "kind": r.kind,
        "verbs": ["get", "patch", "update"],
    }
    return [main, status]


def core_v1_resources() -> dict:
    log = {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]}
    return {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            *_resource(PODS, ["po"], ["all"]),
            log,
            _resource(CONFIGMAPS, ["cm"])[0],
        ],
    }


def kubeflow_v1_resources() -> dict:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "kubeflow.org/v1",
        "resources": _resource(TFJOBS),
    }


def tensorboard_v1alpha1_resources() -> dict:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": TENSORBOARDS.api_version,
        "resources": _resource(TENSORBOARDS),
    }


# -- server-side printing (what `kubectl get` shows) --------------------------------


def _age(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    seconds = int((datetime.now(UTC) - datetime.fromisoformat(ts.replace("Z", "+00:00"))).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _partial(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def _column(name: str, type_: str = "string", fmt: str = "") -> dict:
    return {"name": name, "type": type_, "format": fmt, "description": "", "priority": 0}


def _tfjob_row(obj: dict) -> list:
    conditions = (obj.get("status") or {}).get("conditions") or []
    # additionalPrinterColumns: .status.conditions[-1:].type and .metadata.creationTimestamp
    return [
        obj["metadata"]["name"],
        conditions[-1]["type"] if conditions else "",
        _age(obj["metadata"].get("creationTimestamp")),
    ]


def _pod_row(obj: dict) -> list:
    statuses = obj.get("status", {}).get("containerStatuses") or []
    containers = obj.get("spec", {}).get("containers") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    status = obj.get("status", {}).get("phase", "Pending")
    for s in statuses:
        state = s.get("state") or {}
        if "waiting" in state:
            status = state["waiting"].get("reason") or status
        elif "terminated" in state and status not in ("Succeeded", "Failed"):
            status = state["terminated"].get("reason") or status
    if status == "Succeeded":
        status = "Completed"
    elif status == "Failed":
        status = next(
            (
                s["state"]["terminated"].get("reason", "Error")
                for s in statuses
                if "terminated" in (s.get("state") or {})
            ),
            "Error",
        )
    if obj["metadata"].get("deletionTimestamp"):
        status = "Terminating"
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    return [
        obj["metadata"]["name"],
        f"{ready}/{len(containers)}",
        status,
        restarts,
        _age(obj["metadata"].get("creationTimestamp")),
    ]


def table(resource: Resource, items: list[dict], resource_version: str) -> dict:
    if resource == PODS:
        columns = [
            _column("Name", fmt="name"),
            _column("Ready"),
            _column("Status"),
            _column("Restarts", "string"),
            _column("Age"),
        ]
        rows = [_pod_row(o) for o in items]
    else:
        columns = [_column("Name", fmt="name"), _column("State"), _column("Age", "date")]
        rows = [_tfjob_row(o) for o in items]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": [{"cells": cells, "object": _partial(o)} for cells, o in zip(rows, items, strict=True)],
    }
