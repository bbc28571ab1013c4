"""The real schemas behind the sample estates, applied the way the kube-apiserver applies them.

The samples are only worth testing against if a real RHACM hub and OpenShift Virtualization cluster could
hold them, so every sample object is checked against the CRD its kind ships with (tests/fixtures/crds,
copied from upstream, see SOURCES.md) or, for core kinds, a small hand-written schema.

``validate`` is strict like ``kubectl apply --validate=strict``: a field the schema does not know is an
error. The apiserver would silently prune it, which would hide a typo in a sample. ``prune`` returns what
a cluster would store, so a test can build the object an ODF 4.16, 4.18 or 4.20 hub really returns.

Not evaluated: CEL rules (``x-kubernetes-validations``, mostly ``self == oldSelf`` transition rules that
need an old object) and defaults (``prune`` removes fields, it does not add any).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

FIXTURES = Path(__file__).parent / "fixtures" / "crds"
VARIANTS = ("main", "4.16", "4.18", "4.20")

_VARIANT_DIR = re.compile(r"^odf-release-(\d+\.\d+)$")
_OBJECT_META = "core/objectmeta.yaml"

# Schemas that are not CRD documents: the datree JSON Schemas (the generated KubeVirt/CDI CRDs as installed)
# and the hand-written core kinds. Neither names its group, version, kind or scope, so they are listed here.
_PLAIN_SCHEMAS: dict[str, tuple[str, str, str, str]] = {
    "kubevirt/virtualmachine_v1.json": ("kubevirt.io", "v1", "VirtualMachine", "Namespaced"),
    "kubevirt/virtualmachineinstance_v1.json": ("kubevirt.io", "v1", "VirtualMachineInstance", "Namespaced"),
    "kubevirt/virtualmachineinstancetype_v1beta1.json": (
        "instancetype.kubevirt.io",
        "v1beta1",
        "VirtualMachineInstancetype",
        "Namespaced",
    ),
    "kubevirt/virtualmachineclusterinstancetype_v1beta1.json": (
        "instancetype.kubevirt.io",
        "v1beta1",
        "VirtualMachineClusterInstancetype",
        "Cluster",
    ),
    "kubevirt/virtualmachinepreference_v1beta1.json": (
        "instancetype.kubevirt.io",
        "v1beta1",
        "VirtualMachinePreference",
        "Namespaced",
    ),
    "kubevirt/virtualmachineclusterpreference_v1beta1.json": (
        "instancetype.kubevirt.io",
        "v1beta1",
        "VirtualMachineClusterPreference",
        "Cluster",
    ),
    "cdi/datavolume_v1beta1.json": ("cdi.kubevirt.io", "v1beta1", "DataVolume", "Namespaced"),
    "core/persistentvolumeclaim_v1.yaml": ("", "v1", "PersistentVolumeClaim", "Namespaced"),
    "core/namespace_v1.yaml": ("", "v1", "Namespace", "Cluster"),
    "core/storageclass_v1.yaml": ("storage.k8s.io", "v1", "StorageClass", "Cluster"),
    "core/node_v1.yaml": ("", "v1", "Node", "Cluster"),
    "core/secret_v1.yaml": ("", "v1", "Secret", "Namespaced"),
    "core/configmap_v1.yaml": ("", "v1", "ConfigMap", "Namespaced"),
    "core/deployment_v1.yaml": ("apps", "v1", "Deployment", "Namespaced"),
    "core/pod_v1.yaml": ("", "v1", "Pod", "Namespaced"),
    "core/networkpolicy_v1.yaml": ("networking.k8s.io", "v1", "NetworkPolicy", "Namespaced"),
}

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
# Go durations, plus the day and week units that kube-openapi's strfmt also accepts.
_GO_DURATION = re.compile(r"^[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w))+)$")


@dataclass(frozen=True)
class Schema:
    group: str
    version: str
    kind: str
    scope: str  # "Namespaced" or "Cluster"
    variant: str
    source: str  # path under tests/fixtures/crds
    openapi: dict[str, Any]


def load_schema(group: str, version: str, kind: str, variant: str = "main") -> dict[str, Any]:
    """The openAPIV3Schema of ``group/version`` ``kind`` as shipped in ``variant`` (main, 4.16, 4.18, 4.20)."""
    return _lookup(group, version, kind, variant).openapi


def validate(obj: dict[str, Any], variant: str = "main") -> list[str]:
    """Every way ``obj`` breaks its schema, one message each; empty when the object is valid.

    Besides the schema itself: the scope (namespace set exactly for namespaced kinds), ObjectMeta, unknown
    fields (the ones ``prune`` would drop) and duplicate keys in ``map`` lists. A null is accepted only
    where the schema says ``nullable``.
    """
    where = _describe(obj)
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [f"{where}: apiVersion and kind must be strings"]
    group, _, version = api_version.rpartition("/")
    try:
        schema = _lookup(group, version, kind, variant)
    except KeyError as exc:
        return [f"{where}: {exc.args[0]}"]
    errors = [f"{where}: {message}" for message in _scope_errors(obj, schema.scope)]
    for error in _validator(group, version, kind, schema.variant).iter_errors(obj):
        error = _deepest(error)
        errors.append(f"{where}: {_path(error.absolute_path)}: {error.message}")
    problems: list[str] = []
    _prune(obj, schema.openapi, "", problems, resource_root=True)
    errors += [f"{where}: {problem}" for problem in problems]
    return errors


def prune(obj: dict[str, Any], variant: str = "main") -> dict[str, Any]:
    """A copy of ``obj`` without the fields ``variant``'s schema does not know, as the apiserver stores it."""
    group, _, version = obj["apiVersion"].rpartition("/")
    schema = _lookup(group, version, obj["kind"], variant)
    return _prune(obj, schema.openapi, "", [], resource_root=True)


# --- registry -------------------------------------------------------------------------------------------


@cache
def _registry() -> dict[tuple[str, str, str, str], Schema]:
    found: dict[tuple[str, str, str, str], Schema] = {}
    for path in sorted(FIXTURES.rglob("*")):
        if path.suffix in (".yaml", ".yml") and path.parent.name != "core":
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    for schema in _crd_schemas(doc, path):
                        _register(found, schema)
    for relative, (group, version, kind, scope) in _PLAIN_SCHEMAS.items():
        openapi = _read(FIXTURES / relative)
        _register(found, Schema(group, version, kind, scope, "main", relative, _drop_closed_objects(openapi)))
    return found


def _crd_schemas(crd: dict[str, Any], path: Path) -> list[Schema]:
    spec = crd["spec"]
    match = _VARIANT_DIR.match(path.parent.name)
    variant = match.group(1) if match else "main"
    relative = path.relative_to(FIXTURES).as_posix()
    return [
        Schema(spec["group"], v["name"], spec["names"]["kind"], spec["scope"], variant, relative, openapi)
        for v in spec["versions"]
        if (openapi := (v.get("schema") or {}).get("openAPIV3Schema"))
    ]


def _register(found: dict[tuple[str, str, str, str], Schema], schema: Schema) -> None:
    """Two files may define the same kind (the NAD CRD ships twice) only if they define the same structure."""
    key = (schema.group, schema.version, schema.kind, schema.variant)
    previous = found.get(key)
    if previous is not None and _structure(previous.openapi, True) != _structure(schema.openapi, True):
        raise ValueError(f"{previous.source} and {schema.source} define {key} differently")
    found.setdefault(key, schema)


def _lookup(group: str, version: str, kind: str, variant: str) -> Schema:
    """The schema of ``variant``. Groups without per-release copies (KubeVirt, OCM, core) share one schema for
    all variants; a Ramen kind missing from a release folder is an error, not a silent fallback to main."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    registry = _registry()
    name = f"{group}/{version} {kind}" if group else f"{version} {kind}"
    schema = registry.get((group, version, kind, variant))
    if schema is None and variant != "main":
        per_release = any(g == group and var != "main" for g, _, _, var in registry)
        if per_release:
            raise KeyError(f"no ODF {variant} schema for {name} in {FIXTURES}")
        schema = registry.get((group, version, kind, "main"))
    if schema is None:
        raise KeyError(f"no schema for {name} in {FIXTURES}")
    return schema


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def _drop_closed_objects(node: Any) -> Any:
    """Remove ``additionalProperties: false``: datree adds it, a real CRD cannot have it (structural schemas)."""
    if isinstance(node, dict):
        return {k: _drop_closed_objects(v) for k, v in node.items() if not (k == "additionalProperties" and v is False)}
    if isinstance(node, list):
        return [_drop_closed_objects(v) for v in node]
    return node


def _structure(node: Any, root: bool = False) -> Any:
    """``node`` without descriptions, and at the root without apiVersion/kind/metadata, which are implicit."""
    if isinstance(node, list):
        return [_structure(v) for v in node]
    if not isinstance(node, dict):
        return node
    result = {k: _structure(v) for k, v in node.items() if k != "description"}
    if root and "properties" in result:
        result["properties"] = {
            k: v for k, v in result["properties"].items() if k not in ("apiVersion", "kind", "metadata")
        }
    return result


@cache
def _object_meta() -> dict[str, Any]:
    return _read(FIXTURES / _OBJECT_META)


def _with_object_meta(openapi: dict[str, Any]) -> dict[str, Any]:
    """The root schema with ``metadata`` as ObjectMeta, which the apiserver checks for every kind."""
    properties = {**openapi.get("properties", {}), "metadata": _object_meta()}
    return {**openapi, "properties": properties}


# --- validation -----------------------------------------------------------------------------------------


def _describe(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))
    return f"{obj.get('kind')} {name}"


def _scope_errors(obj: dict[str, Any], scope: str) -> list[str]:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    errors = [] if isinstance(meta.get("name"), str) and meta["name"] else ["metadata.name is required"]
    namespace = meta.get("namespace")
    if scope == "Namespaced" and not namespace:
        errors.append("metadata.namespace is required for a namespaced kind")
    if scope == "Cluster" and namespace is not None:
        errors.append(f"metadata.namespace {namespace!r} is set on a cluster-scoped kind")
    return errors


@cache
def _validator(group: str, version: str, kind: str, variant: str) -> jsonschema.Draft7Validator:
    openapi = _with_object_meta(_lookup(group, version, kind, variant).openapi)
    return jsonschema.Draft7Validator(_to_draft7(openapi), format_checker=_FORMATS)


def _to_draft7(node: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI v3 as Kubernetes uses it, rewritten as Draft 7: ``nullable`` and int-or-string become types,
    a ``set`` list must hold unique items."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("description", "default", "nullable", "example"):
            continue
        if key == "properties":
            out[key] = {name: _to_draft7(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _to_draft7(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [_to_draft7(sub) for sub in value]
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string") and "type" not in node and "anyOf" not in node:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if node.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out


# The string formats the apiserver checks (kube-openapi strfmt). Like the apiserver, integer formats
# (int32, int64) are not range-checked: KubeVirt declares uint32 fields as int32.
_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    match = _RFC3339.match(value)
    if not match:
        return False
    # fromisoformat rejects month 13 and the like; it takes at most microseconds, RFC 3339 allows nanoseconds.
    fraction = (match.group(1) or "")[:7]
    datetime.fromisoformat(f"{value[:19]}{fraction}{match.group(2).upper().replace('Z', '+00:00')}".upper())
    return True


@_FORMATS.checks("duration")
def _is_duration(value: object) -> bool:
    return not isinstance(value, str) or bool(_GO_DURATION.match(value))


@_FORMATS.checks("byte", raises=binascii.Error)
def _is_base64(value: object) -> bool:
    if isinstance(value, str):
        base64.b64decode(value, validate=True)
    return True


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For anyOf failures (int-or-string) the most specific branch error says what is wrong."""
    return jsonschema.exceptions.best_match([error, *error.context]) if error.context else error


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<root>"


# --- structural pruning ---------------------------------------------------------------------------------


def _prune(
    value: Any,
    schema: dict[str, Any] | None,
    path: str,
    problems: list[str],
    *,
    resource_root: bool = False,
    keep_unknown: bool = False,
) -> Any:
    """The apiserver's structural pruning and ObjectMeta coercion (apiextensions-apiserver
    pkg/apiserver/schema/pruning and objectmeta), on a copy.

    Records every dropped field, and every duplicate in a ``map`` list, in ``problems``. Below
    x-kubernetes-preserve-unknown-fields unknown fields stay; known ones are still pruned, and list items
    inherit the preservation (``skipPrune``).
    """
    keep_unknown = keep_unknown or bool(schema and schema.get("x-kubernetes-preserve-unknown-fields"))
    if isinstance(value, dict):
        if schema is None:
            if keep_unknown:
                return copy.deepcopy(value)
            problems.extend(f"unknown field {_join(path, key)}" for key in value)
            return {}
        resource = resource_root or bool(schema.get("x-kubernetes-embedded-resource"))
        return _prune_fields(value, schema, path, problems, resource, keep_unknown)
    if isinstance(value, list):
        if schema is not None:
            problems.extend(_list_duplicates(value, schema, path))
        items = None if schema is None else schema.get("items")
        return [
            _prune(item, items, f"{path}[{index}]", problems, keep_unknown=keep_unknown)
            for index, item in enumerate(value)
        ]
    return value


def _prune_fields(
    value: dict[str, Any],
    schema: dict[str, Any],
    path: str,
    problems: list[str],
    resource: bool,
    keep_unknown: bool,
) -> dict[str, Any]:
    """One object's fields. A resource (the root, or x-kubernetes-embedded-resource) keeps apiVersion and kind
    when they are strings and has its metadata reduced to ObjectMeta."""
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    kept: dict[str, Any] = {}
    for key, sub in value.items():
        where = _join(path, key)
        if resource and key in ("apiVersion", "kind"):
            if isinstance(sub, str):
                kept[key] = sub
            else:
                problems.append(f"{where} is not a string and is dropped")
        elif resource and key == "metadata" and isinstance(sub, dict):
            kept[key] = _prune(sub, _object_meta(), where, problems)
        elif key in properties:
            kept[key] = _prune(sub, properties[key], where, problems)
        elif isinstance(additional, dict):
            kept[key] = _prune(sub, additional, where, problems)
        elif keep_unknown:
            kept[key] = copy.deepcopy(sub)
        else:
            problems.append(f"unknown field {where}")
    return kept


def _list_duplicates(value: list[Any], schema: dict[str, Any], path: str) -> list[str]:
    """x-kubernetes-list-type map: the listed keys identify an item, so two items may not share them."""
    if schema.get("x-kubernetes-list-type") != "map":
        return []
    keys = schema.get("x-kubernetes-list-map-keys") or []
    seen: set[str] = set()
    duplicates = []
    for index, item in enumerate(value):
        identity = json.dumps([item.get(k) for k in keys] if isinstance(item, dict) else item, sort_keys=True)
        if identity in seen:
            duplicates.append(f"duplicate entry {path}[{index}] (list-map keys {', '.join(keys)})")
        seen.add(identity)
    return duplicates


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
