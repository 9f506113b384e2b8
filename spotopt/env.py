"""Typed helpers that read settings from the environment.

Every secret may also come from a file: ``SECRET_KEY_FILE=/run/secrets/key`` wins over ``SECRET_KEY``.
"""

from __future__ import annotations

import json
import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        with open(file_path, encoding="utf-8") as fh:
            return fh.read().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """Comma-separated (``a,b``) or a JSON list of strings (``["a", "b"]``)."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    if raw.strip().startswith("["):
        try:
            items = json.loads(raw)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name} is not a valid JSON list: {exc}") from exc
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ImproperlyConfigured(f"{name} must be a JSON list of strings, got {raw!r}")
        return [item.strip() for item in items if item.strip()]
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_rate(name: str, default: str) -> str:
    """A DRF-style rate such as ``100/min``."""
    raw = os.environ.get(name, default).strip()
    try:
        count, period = raw.split("/")
        int(count)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must look like 100/min, got {raw!r}") from exc
    if period[0] not in "smhd":
        raise ImproperlyConfigured(f"{name} period must be s, min, h or d, got {raw!r}")
    return raw
