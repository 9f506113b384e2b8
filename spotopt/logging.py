"""Logging filters: every record carries the request id; secrets never leave the process."""

from __future__ import annotations

import logging
import re

from .context import request_id_var

_SECRET_KEYS = re.compile(r"(password|passwd|secret|token|authorization|api[_-]?key|access[_-]?key|credential)", re.I)
_BEARER = re.compile(r"(Bearer|Api-Key)\s+[A-Za-z0-9._\-]+", re.I)
_KV = re.compile(
    r"((?:password|secret|token|api[_-]?key|access[_-]?key|secret[_-]?access[_-]?key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',&}]+",
    re.I,
)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or None
        return True


def redact_text(text: str) -> str:
    text = _BEARER.sub(lambda m: f"{m.group(1)} [REDACTED]", text)
    return _KV.sub(lambda m: f"{m.group(1)}[REDACTED]", text)


class RedactSecretsFilter(logging.Filter):
    """Masks values that look like credentials in the message, its arguments and ``extra`` fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        for key, value in list(record.__dict__.items()):
            if _SECRET_KEYS.search(key) and key not in ("msg", "args"):
                record.__dict__[key] = "[REDACTED]"
            elif isinstance(value, str) and key not in ("msg", "levelname", "name", "pathname", "filename"):
                record.__dict__[key] = redact_text(value)
        return True
