"""The real TFJob CRD (training-operator release-1.9, commit 078ec30f), for checking what we emit.

Import from any test: ``from crd_check import assert_valid_tfjob``.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import jsonschema
import yaml

CRD_PATH = Path(__file__).resolve().parent / "data" / "kubeflow.org_tfjobs.crd.yaml"


@functools.lru_cache(maxsize=1)
def crd_openapi_schema() -> dict:
    crd = yaml.safe_load(CRD_PATH.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def _strict(schema):
    """The same schema with unknown fields forbidden (the API server would prune them)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items() if k != "properties"}
        if "properties" in schema:
            out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
            if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
                out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.lru_cache(maxsize=1)
def strict_schema() -> dict:
    schema = copy.deepcopy(crd_openapi_schema())
    strict = _strict(schema)
    # metadata is ObjectMeta, validated by the API server itself, not the CRD schema.
    strict["properties"]["metadata"] = {"type": "object"}
    return strict


def assert_valid_tfjob(manifest: dict) -> None:
    """Raise unless ``manifest`` validates against the real CRD schema, with no field it doesn't know."""
    jsonschema.validate(manifest, strict_schema())
