"""The rules a node template must satisfy, in one place for the API and the console.

:func:`template_errors` checks a (possibly unsaved) ``NodeTemplate`` and returns field errors in the API's shape
(``{"field": ["message", ...]}``); the services raise them as ``ValidationFailed``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from .services import matching

ARCHITECTURES = ("x86_64", "arm64")
CAPACITY_TYPES = ("spot", "on-demand")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# A family pattern: letters, digits and dashes with shell wildcards (m5, c7*, r6?d, c7i-flex).
_FAMILY_PATTERN = re.compile(r"^[a-z0-9*?\-]{1,32}$")
# An availability zone (us-east-1a) or a Local Zone (us-west-2-lax-1a).
_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d([a-z]|-[a-z]+-\d[a-z])$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Labels the platform or the kubelet own; operators may not set them on nodes.
_RESERVED_LABEL_DOMAINS = ("kubernetes.io", "k8s.io", "karpenter.sh", "spotopt.io")
_ALLOWED_RESERVED = ("node-restriction.kubernetes.io",)
MAX_BUDGET = Decimal("1000000")
# Upper bounds of the size filters: far above any instance type (the largest have 448 vCPU and 24 TiB), within what
# the columns hold.
MAX_VCPU = 4096
MAX_MEMORY_GIB = Decimal("999999.99")


def label_key_error(key: Any) -> str | None:
    if not isinstance(key, str) or not key:
        return "A label key is required."
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f'"{key}": the prefix must be a DNS subdomain.'
    if not _LABEL_NAME.match(name):
        return f'"{key}": a name of up to 63 letters, digits, "-", "_" or ".", starting and ending alphanumeric.'
    return None


def _reserved(key: str) -> bool:
    prefix = key.rpartition("/")[0]
    if not prefix or any(prefix == a or prefix.endswith("." + a) for a in _ALLOWED_RESERVED):
        return False
    return any(prefix == d or prefix.endswith("." + d) for d in _RESERVED_LABEL_DOMAINS)


def label_value_error(value: Any) -> str | None:
    if not isinstance(value, str):
        return "A label value must be a string."
    if value and not _LABEL_NAME.match(value):
        return f'"{value}": up to 63 letters, digits, "-", "_" or ".", starting and ending alphanumeric.'
    return None


def _string_list(value: Any, *, allowed: tuple[str, ...] | None, what: str, required: bool) -> list[str]:
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        return [f"Expected a list of {what}."]
    if required and not value:
        return [f"Choose at least one of: {', '.join(allowed)}." if allowed else f"At least one {what} is required."]
    if allowed is not None and (bad := [v for v in value if v not in allowed]):
        return [f"Unknown {what}: {', '.join(bad)}. Choose from: {', '.join(allowed)}."]
    if len(set(value)) != len(value):
        return [f"{what.capitalize()} must not repeat."]
    return []


def _families_errors(value: Any, known: frozenset[str]) -> list[str] | dict[str, list[str]]:
    if not isinstance(value, dict) or set(value) - {"include", "exclude"}:
        return ['Expected {"include": [patterns], "exclude": [patterns]}.']
    errors: dict[str, list[str]] = {}
    for key in ("include", "exclude"):
        patterns = value.get(key, [])
        if not isinstance(patterns, list) or any(not isinstance(p, str) for p in patterns):
            errors[key] = ["Expected a list of family patterns."]
            continue
        problems = []
        for pattern in patterns:
            p = pattern.strip().lower()
            if not _FAMILY_PATTERN.match(p) or p.strip("*?") == "" and p != "*":
                problems.append(f'"{pattern}" is not a family pattern (such as m5, c7* or r6?d).')
            elif known and not matching.family_matches_any(p, known):
                problems.append(f'"{pattern}" matches no known instance family.')
        if len(set(patterns)) != len(patterns):
            problems.append("Patterns must not repeat.")
        if problems:
            errors[key] = problems
    return errors


def _taints_errors(value: Any) -> list:
    if not isinstance(value, list):
        return ["Expected a list of taints."]
    errors: list[Any] = []
    seen: set[tuple[str, str]] = set()
    for taint in value:
        item: dict[str, list[str]] = {}
        if not isinstance(taint, dict) or set(taint) - {"key", "value", "effect"}:
            errors.append({"non_field_errors": ['Expected {"key", "value", "effect"}.']})
            continue
        if (problem := label_key_error(taint.get("key"))) is not None:
            item["key"] = [problem]
        if (problem := label_value_error(taint.get("value", ""))) is not None:
            item["value"] = [problem]
        if taint.get("effect") not in TAINT_EFFECTS:
            item["effect"] = [f"Choose from: {', '.join(TAINT_EFFECTS)}."]
        identity = (taint.get("key"), taint.get("effect"))
        if not item and identity in seen:
            item["key"] = [f'Taint "{taint["key"]}:{taint["effect"]}" is repeated.']
        seen.add(identity)
        errors.append(item)
    return errors if any(errors) else []


def _labels_errors(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return ['Expected an object of {"key": "value"} labels.']
    problems = []
    for key, label_value in value.items():
        if (problem := label_key_error(key)) is not None:
            problems.append(problem)
        elif _reserved(key):
            problems.append(f'"{key}": labels under {", ".join(_RESERVED_LABEL_DOMAINS)} are reserved.')
        if (problem := label_value_error(label_value)) is not None:
            problems.append(problem)
    return problems


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal("NaN")


def template_errors(template: Any) -> dict[str, Any]:
    """Every rule a template must satisfy, except name uniqueness (the service checks it under a lock).

    Returns ``{}`` when the template is valid. The catalog check ("matches no instance type") runs only when the
    other rules pass and the pricing catalog is loaded.
    """
    errors: dict[str, Any] = {}
    if not (template.name or "").strip():
        errors["name"] = ["This field may not be blank."]
    elif len(template.name) > 100:
        errors["name"] = ["At most 100 characters."]

    if problems := _string_list(template.architectures, allowed=ARCHITECTURES, what="architectures", required=True):
        errors["architectures"] = problems
    if problems := _string_list(template.capacity_types, allowed=CAPACITY_TYPES, what="capacity types", required=True):
        errors["capacity_types"] = problems
    if problems := _families_errors(template.instance_families, matching.known_families()):
        errors["instance_families"] = problems

    sizes = (("min_vcpu", "max_vcpu", "vCPU", MAX_VCPU), ("min_memory_gib", "max_memory_gib", "GiB", MAX_MEMORY_GIB))
    for low, high, unit, most in sizes:
        lo, hi = _decimal(getattr(template, low)), _decimal(getattr(template, high))
        for name, value in ((low, lo), (high, hi)):
            if value is not None and (value.is_nan() or value <= 0):
                errors[name] = [f"Must be a positive number of {unit}."]
            elif value is not None and value > most:
                errors[name] = [f"At most {most} {unit}."]
        if lo is not None and hi is not None and low not in errors and high not in errors and lo > hi:
            errors[low] = [f"{low} ({lo}) must not exceed {high} ({hi})."]

    if template.gpu not in ("exclude", "allow", "require"):
        errors["gpu"] = ["Choose from: exclude, allow, require."]
    if template.strategy not in ("lowest-price", "price-capacity-optimized", "capacity-optimized"):
        errors["strategy"] = ["Choose from: lowest-price, price-capacity-optimized, capacity-optimized."]
    if not isinstance(template.fallback_restore_minutes, int) or not 1 <= template.fallback_restore_minutes <= 10080:
        errors["fallback_restore_minutes"] = ["Between 1 and 10080 minutes (a week)."]
    if not isinstance(template.max_price_increase_pct, int) or not 0 <= template.max_price_increase_pct <= 100:
        errors["max_price_increase_pct"] = ["Between 0 and 100 percent."]

    if not isinstance(template.zones, list) or any(not isinstance(z, str) for z in template.zones):
        errors["zones"] = ["Expected a list of availability zone names."]
    elif bad := [z for z in template.zones if not _ZONE.match(z)]:
        errors["zones"] = [f"Not availability zone names: {', '.join(bad)} (such as us-east-1a)."]
    elif len(set(template.zones)) != len(template.zones):
        errors["zones"] = ["Zones must not repeat."]

    if problems := _labels_errors(template.labels):
        errors["labels"] = problems
    if problems := _taints_errors(template.taints):
        errors["taints"] = problems

    budget = _decimal(template.max_hourly_budget)
    if budget is not None:
        if budget.is_nan() or budget <= 0:
            errors["max_hourly_budget"] = ['Must be a positive amount in USD per hour, such as "12.50".']
        elif budget.as_tuple().exponent < -2:
            errors["max_hourly_budget"] = ["At most 2 decimal places."]
        elif budget >= MAX_BUDGET:
            errors["max_hourly_budget"] = [f"Must be less than {MAX_BUDGET}."]

    if not errors and matching.template_matches_catalog(template) is False:
        errors["non_field_errors"] = [
            "This template matches no instance type in the catalog: widen the families, sizes or architectures."
        ]
    return errors
