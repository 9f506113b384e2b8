"""Validation of what agents send. Hand-written rather than DRF serializers because a snapshot has thousands of
items: this checks a 5,000-pod snapshot in milliseconds and names every bad field (``pods[12].name``), so that a
malformed part is rejected as a whole before anything is written."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.utils import timezone

from spotopt.api.values import INT32_MAX, INT32_MIN, parse_aware_datetime
from spotopt.errors import ValidationFailed

MAX_NODES = 5_000
MAX_PODS = 100_000
MAX_EVENTS = 500
_PROVIDER_ID = re.compile(r"^aws:///(?P<zone>[a-z0-9-]*)/(?P<instance>i-[0-9a-f]{8,32})$")
_NAME_MAX = 253


class _Errors:
    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        # A garbage snapshot must not produce a megabyte of errors.
        if len(self.fields) < 50:
            self.fields.setdefault(path, []).append(message)

    def raise_if_any(self, message: str) -> None:
        if self.fields:
            raise ValidationFailed(message, fields=self.fields)


def _str(errors: _Errors, obj: dict, key: str, path: str, *, required: bool = True, max_length: int = _NAME_MAX) -> str:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            errors.add(f"{path}.{key}", "This field is required.")
        return ""
    if not isinstance(value, str):
        errors.add(f"{path}.{key}", "Must be a string.")
        return ""
    if len(value) > max_length:
        errors.add(f"{path}.{key}", f"At most {max_length} characters.")
        return ""
    return value


def _int(
    errors: _Errors,
    obj: dict,
    key: str,
    path: str,
    *,
    default: int = 0,
    minimum: int | None = 0,
    maximum: int = 2**62,
) -> int:
    """An integer within [minimum, maximum]; the bounds are the column's (64-bit by default)."""
    value = obj.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(f"{path}.{key}", "Must be an integer.")
        return default
    if minimum is not None and value < minimum:
        errors.add(f"{path}.{key}", f"Must be at least {minimum}.")
        return default
    if value > maximum or (minimum is None and value < -maximum):
        errors.add(f"{path}.{key}", f"Must be at most {maximum}.")
        return default
    return value


def _bool(errors: _Errors, obj: dict, key: str, path: str, *, default: bool = False) -> bool:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        errors.add(f"{path}.{key}", "Must be true or false.")
        return default
    return value


def _obj(errors: _Errors, value: Any, path: str) -> dict | None:
    if not isinstance(value, dict):
        errors.add(path, "Must be an object.")
        return None
    return value


def _str_map(errors: _Errors, obj: dict, key: str, path: str) -> dict[str, str]:
    value = obj.get(key) or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 317 and len(v) <= 1024 for k, v in value.items()
    ):
        errors.add(f"{path}.{key}", "Must be an object of strings.")
        return {}
    return value


def _taints(errors: _Errors, obj: dict, path: str) -> list[dict]:
    value = obj.get("taints") or []
    if not isinstance(value, list):
        errors.add(f"{path}.taints", "Must be a list.")
        return []
    taints = []
    for i, taint in enumerate(value):
        if not isinstance(taint, dict) or not isinstance(taint.get("key"), str) or not taint.get("key"):
            errors.add(f"{path}.taints[{i}]", "Must be an object with a key.")
            continue
        if taint.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errors.add(f"{path}.taints[{i}].effect", "Must be NoSchedule, PreferNoSchedule or NoExecute.")
            continue
        taints.append({"key": taint["key"], "value": str(taint.get("value") or ""), "effect": taint["effect"]})
    return taints


def instance_id_from_provider_id(provider_id: str) -> str:
    """``aws:///us-east-1a/i-0abc…`` → ``i-0abc…``; empty for anything else (e.g. a hand-registered node)."""
    match = _PROVIDER_ID.match(provider_id or "")
    return match["instance"] if match else ""


def _node(errors: _Errors, raw: Any, path: str) -> dict | None:
    obj = _obj(errors, raw, path)
    if obj is None:
        return None
    alloc = obj.get("allocatable") or {}
    if not isinstance(alloc, dict):
        errors.add(f"{path}.allocatable", "Must be an object.")
        alloc = {}
    apath = f"{path}.allocatable"
    provider_id = _str(errors, obj, "provider_id", path, required=False, max_length=255)
    capacity = _str(errors, obj, "capacity_type", path, required=False, max_length=16)
    if capacity and capacity not in ("spot", "on-demand"):
        errors.add(f"{path}.capacity_type", "Must be spot or on-demand.")
    return {
        "name": _str(errors, obj, "name", path),
        "provider_id": provider_id,
        "ec2_instance_id": instance_id_from_provider_id(provider_id),
        "instance_type": _str(errors, obj, "instance_type", path, required=False, max_length=64),
        "zone": _str(errors, obj, "zone", path, required=False, max_length=32),
        "capacity_type": capacity,
        "labels": _str_map(errors, obj, "labels", path),
        "taints": _taints(errors, obj, path),
        "unschedulable": _bool(errors, obj, "unschedulable", path),
        "ready": _bool(errors, obj, "ready", path),
        "cpu_m": _int(errors, alloc, "cpu_m", apath),
        "memory_mib": _int(errors, alloc, "memory_mib", apath),
        "max_pods": _int(errors, alloc, "pods", apath, maximum=INT32_MAX),
    }


_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


def _pod(errors: _Errors, raw: Any, path: str) -> dict | None:
    obj = _obj(errors, raw, path)
    if obj is None:
        return None
    requests = obj.get("requests") or {}
    if not isinstance(requests, dict):
        errors.add(f"{path}.requests", "Must be an object.")
        requests = {}
    phase = _str(errors, obj, "phase", path, required=False, max_length=20)
    if phase and phase not in _PHASES:
        errors.add(f"{path}.phase", f"Must be one of {', '.join(_PHASES)}.")
    return {
        "namespace": _str(errors, obj, "namespace", path),
        "name": _str(errors, obj, "name", path),
        "node": _str(errors, obj, "node", path, required=False),
        "phase": phase,
        "cpu_m": _int(errors, requests, "cpu_m", f"{path}.requests"),
        "memory_mib": _int(errors, requests, "memory_mib", f"{path}.requests"),
        "owner_kind": _str(errors, obj, "owner_kind", path, required=False, max_length=64),
        "owner_name": _str(errors, obj, "owner_name", path, required=False),
        "daemonset": _bool(errors, obj, "daemonset", path),
        "do_not_disrupt": _bool(errors, obj, "do_not_disrupt", path),
        "priority": _int(errors, obj, "priority", path, minimum=INT32_MIN, maximum=INT32_MAX),
    }


def validate_snapshot(data: Any) -> dict:
    """The cleaned snapshot ``{agent_version, kubernetes_version, nodes, pods}`` or ValidationFailed with every
    bad field."""
    errors = _Errors()
    if not isinstance(data, dict):
        raise ValidationFailed("The snapshot must be a JSON object.", fields={"non_field_errors": ["Not an object."]})
    cleaned: dict[str, Any] = {
        "agent_version": _str(errors, data, "agent_version", "snapshot", required=False, max_length=64),
        "kubernetes_version": _str(errors, data, "kubernetes_version", "snapshot", required=False, max_length=64),
    }
    for key, limit, parse in (("nodes", MAX_NODES, _node), ("pods", MAX_PODS, _pod)):
        items = data.get(key)
        if not isinstance(items, list):
            errors.add(key, "This field is required and must be a list.")
            cleaned[key] = []
            continue
        if len(items) > limit:
            errors.add(key, f"At most {limit} items.")
            cleaned[key] = []
            continue
        cleaned[key] = [parse(errors, item, f"{key}[{i}]") for i, item in enumerate(items)]
    # Duplicates would make the upsert ambiguous.
    seen_nodes: set[str] = set()
    for i, node in enumerate(cleaned["nodes"]):
        if node and node["name"] in seen_nodes:
            errors.add(f"nodes[{i}].name", "Duplicate node name.")
        elif node:
            seen_nodes.add(node["name"])
    seen_pods: set[tuple[str, str]] = set()
    for i, pod in enumerate(cleaned["pods"]):
        if pod and (pod["namespace"], pod["name"]) in seen_pods:
            errors.add(f"pods[{i}].name", "Duplicate pod.")
        elif pod:
            seen_pods.add((pod["namespace"], pod["name"]))
    errors.raise_if_any("The snapshot is malformed; nothing was saved.")
    return cleaned


def _datetime(errors: _Errors, obj: dict, key: str, path: str) -> datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    try:
        return parse_aware_datetime(value)
    except ValueError as exc:
        errors.add(f"{path}.{key}", str(exc))
        return None


EVENT_TYPES = ("spot-interruption", "rebalance-recommendation", "node-not-ready")


def validate_events(data: Any) -> list[dict]:
    """``{"events": [...]}`` or one event object → cleaned events, or ValidationFailed naming every bad field."""
    errors = _Errors()
    if isinstance(data, dict) and "events" in data:
        items = data["events"]
        if not isinstance(items, list) or not items:
            raise ValidationFailed("events must be a non-empty list.", fields={"events": ["Must be a non-empty list."]})
        base = "events"
    elif isinstance(data, dict):
        items, base = [data], "event"
    else:
        raise ValidationFailed("The body must be a JSON object.", fields={"non_field_errors": ["Not an object."]})
    if len(items) > MAX_EVENTS:
        raise ValidationFailed(f"At most {MAX_EVENTS} events.", fields={"events": [f"At most {MAX_EVENTS} items."]})
    cleaned = []
    for i, raw in enumerate(items):
        path = f"{base}[{i}]" if base == "events" else base
        obj = _obj(errors, raw, path)
        if obj is None:
            continue
        etype = obj.get("type")
        if etype not in EVENT_TYPES:
            errors.add(f"{path}.type", f"Must be one of {', '.join(EVENT_TYPES)}.")
        node = _str(errors, obj, "node", path, required=False)
        instance_id = _str(errors, obj, "instance_id", path, required=False, max_length=32)
        if not node and not instance_id:
            errors.add(f"{path}.node", "A node name or an instance id is required.")
        detail = obj.get("detail") or {}
        if not isinstance(detail, dict):
            errors.add(f"{path}.detail", "Must be an object.")
            detail = {}
        cleaned.append(
            {
                "type": etype,
                "node": node,
                "instance_id": instance_id,
                "occurred_at": _datetime(errors, obj, "occurred_at", path) or timezone.now(),
                "action_deadline": _datetime(errors, obj, "action_deadline", path),
                "detail": detail,
            }
        )
    errors.raise_if_any("The events are malformed; nothing was saved.")
    return cleaned
