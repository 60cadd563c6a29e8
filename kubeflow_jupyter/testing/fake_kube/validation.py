"""What kube-apiserver does to a custom resource before storing it: structural pruning,
schema defaults, then OpenAPI validation with the server's field causes.

Runs against the real TFJob CRD's ``openAPIV3Schema`` (the copy the package ships in
``kubeflow_jupyter/tfjob/crd_schema.json``).
"""

from __future__ import annotations

import copy
import json
import re

_GO_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def _go_value(value) -> str:
    """How the server quotes a bad value in ``Invalid value: ...``."""
    if isinstance(value, (dict, list)):
        return '"' + type(value).__name__.replace("dict", "map").replace("list", "array") + '"'
    return json.dumps(value)


def _type_of(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    for name, t in _GO_TYPES.items():
        if isinstance(value, t):
            return name
    return "null"


def _type_ok(value, schema: dict) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    expected = schema.get("type")
    if not expected:
        return True
    actual = _type_of(value)
    return actual == expected or (expected == "number" and actual == "integer")


def _cause(reason: str, field: str, message: str) -> dict:
    return {"reason": reason, "message": message, "field": field}


def prune_and_default(value, schema: dict) -> object:
    """Drop fields the schema does not know (unless it preserves unknown fields) and fill defaults."""
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") or extra is True
        out = {}
        for key, item in value.items():
            if props and key in props:
                out[key] = prune_and_default(item, props[key])
            elif isinstance(extra, dict):
                out[key] = prune_and_default(item, extra)
            elif keep_unknown:
                out[key] = item
        for key, sub in (props or {}).items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune_and_default(v, schema["items"]) for v in value]
    return value


def validate(value, schema: dict, path: str) -> list[dict]:
    """The causes the server lists in a 422, in its wording."""
    if value is None:
        return (
            []
            if schema.get("nullable")
            else [
                _cause(
                    "FieldValueTypeInvalid",
                    path,
                    f'Invalid value: "null": {path} in body must be of type {schema.get("type", "object")}: "null"',
                )
            ]
        )
    if not _type_ok(value, schema):
        expected = "integer,string" if schema.get("x-kubernetes-int-or-string") else schema["type"]
        return [
            _cause(
                "FieldValueTypeInvalid",
                path,
                f'Invalid value: "{_type_of(value)}": {path} in body must be of type {expected}: "{_type_of(value)}"',
            )
        ]
    causes: list[dict] = []
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(v) for v in schema["enum"])
        causes.append(
            _cause(
                "FieldValueNotSupported", path, f"Unsupported value: {_go_value(value)}: supported values: {allowed}"
            )
        )
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        causes.append(
            _cause(
                "FieldValueInvalid",
                path,
                f"Invalid value: {_go_value(value)}: {path} in body should match '{schema['pattern']}'",
            )
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            causes.append(
                _cause(
                    "FieldValueInvalid",
                    path,
                    f"Invalid value: {value}: {path} in body should be greater than or equal to {schema['minimum']}",
                )
            )
        if "maximum" in schema and value > schema["maximum"]:
            causes.append(
                _cause(
                    "FieldValueInvalid",
                    path,
                    f"Invalid value: {value}: {path} in body should be less than or equal to {schema['maximum']}",
                )
            )
    if isinstance(value, dict):
        for key in schema.get("required") or []:
            if key not in value:
                causes.append(_cause("FieldValueRequired", f"{path}.{key}" if path else key, "Required value"))
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key) if key in props else extra if isinstance(extra, dict) else None
            if sub is not None:
                causes += validate(item, sub, f"{path}.{key}" if path else key)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            causes += validate(item, schema["items"], f"{path}[{i}]")
    return causes


def validate_metadata(metadata: dict) -> list[dict]:
    """ObjectMeta validation for a namespaced object (name rules)."""
    name = metadata.get("name")
    if not name and not metadata.get("generateName"):
        return [_cause("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")]
    if name and (len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name)):
        return [_cause("FieldValueInvalid", "metadata.name", f"Invalid value: {json.dumps(name)}: {_DNS1123_MESSAGE}")]
    return []


def admit_custom_object(obj: dict, schema: dict) -> tuple[dict, list[dict]]:
    """Prune + default + validate a custom object; metadata is ObjectMeta, not the schema's."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    body = {k: v for k, v in obj.items() if k != "metadata"}
    root = {**schema, "properties": {k: v for k, v in (schema.get("properties") or {}).items() if k != "metadata"}}
    cleaned = prune_and_default(body, root)
    causes = validate_metadata(metadata) + validate(cleaned, root, "")
    cleaned["metadata"] = metadata
    return cleaned, causes


# -- ConfigMaps (core/v1): the API server's ValidateConfigMap and ownerReference checks ----------------
_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
#: corev1.MaxSecretSize: the data and binaryData values together.
MAX_CONFIGMAP_DATA_BYTES = 1024 * 1024
_CONFIGMAP_FIELDS = {"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"}


def validate_owner_references(metadata: dict) -> list[dict]:
    causes = []
    for i, ref in enumerate(metadata.get("ownerReferences") or []):
        path = f"metadata.ownerReferences[{i}]"
        if not isinstance(ref, dict):
            causes.append(_cause("FieldValueInvalid", path, "Invalid value: an object is required"))
            continue
        for key in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(key):
                causes.append(
                    _cause("FieldValueInvalid", f"{path}.{key}", f'Invalid value: "": {key} must not be empty')
                )
    return causes


def validate_configmap(obj: dict) -> tuple[dict, list[dict]]:
    """Drop unknown fields (as the server's decoder does) and validate a ConfigMap: name, keys
    (``[-._a-zA-Z0-9]+``, ≤ 253, not ``.``/``..``, not in both data and binaryData), values
    (strings; binaryData base64), the total size (≤ 1 MiB) and ownerReferences."""
    import base64

    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    cleaned = {k: v for k, v in obj.items() if k in _CONFIGMAP_FIELDS}
    cleaned["metadata"] = metadata
    causes = validate_metadata(metadata) + validate_owner_references(metadata)
    total = 0
    seen: set[str] = set()
    for section in ("data", "binaryData"):
        values = obj.get(section) or {}
        if not isinstance(values, dict):
            causes.append(_cause("FieldValueTypeInvalid", section, "Invalid value: an object of strings is required"))
            continue
        for key, value in values.items():
            path = f"{section}[{key}]"
            if len(key) > 253 or not _CONFIGMAP_KEY.match(key) or key in (".", "..") or key.startswith(".."):
                causes.append(
                    _cause(
                        "FieldValueInvalid",
                        path,
                        f"Invalid value: {json.dumps(key)}: a valid config key must consist of alphanumeric "
                        "characters, '-', '_' or '.'",
                    )
                )
            if key in seen:
                causes.append(
                    _cause(
                        "FieldValueInvalid", path, f"Invalid value: {json.dumps(key)}: duplicate of key present in data"
                    )
                )
            seen.add(key)
            if not isinstance(value, str):
                causes.append(_cause("FieldValueTypeInvalid", path, "Invalid value: a string is required"))
                continue
            if section == "binaryData":
                try:
                    total += len(base64.b64decode(value, validate=True))
                except ValueError:
                    causes.append(_cause("FieldValueInvalid", path, "Invalid value: illegal base64 data"))
            else:
                total += len(value.encode("utf-8"))
    if total > MAX_CONFIGMAP_DATA_BYTES:
        causes.append(_cause("FieldValueTooLong", "", f"Too long: must have at most {MAX_CONFIGMAP_DATA_BYTES} bytes"))
    return cleaned, causes


def validate_tensorboard(obj: dict) -> tuple[dict, list[dict]]:
    """Kubeflow's Tensorboard CRD (tensorboard-controller's schema): metadata, ownerReferences and a
    required ``spec.logspath`` string (``pvc://CLAIM/SUBPATH`` or an object-store URL); unknown
    top-level fields are dropped."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    cleaned = {k: v for k, v in obj.items() if k in ("apiVersion", "kind", "metadata", "spec")}
    cleaned["metadata"] = metadata
    causes = validate_metadata(metadata) + validate_owner_references(metadata)
    spec = obj.get("spec")
    logspath = spec.get("logspath") if isinstance(spec, dict) else None
    if not isinstance(logspath, str) or not logspath:
        causes.append(_cause("FieldValueRequired", "spec.logspath", "Required value"))
    else:
        cleaned["spec"] = {"logspath": logspath}
    return cleaned, causes
