"""The API's one JSON parser: what no endpoint can store is refused here, once, as a 400 ``parse_error``.

Python's ``json`` accepts documents no column or validator downstream can take: nesting deep enough to exhaust the
interpreter's recursion limit (a ``RecursionError``, so a 500), NUL characters (PostgreSQL text refuses them),
lone UTF-16 surrogates written as ``\\ud800`` escapes (they cannot be encoded to UTF-8 for the database), and numbers
such as ``1e999`` that parse to infinity. Each is refused for the whole document, with a message.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

# Deeper than any request body of the API needs (an agent snapshot is 4 levels deep, an event's detail a few more).
MAX_JSON_DEPTH = 32
_BAD_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def string_error(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (a NUL character or a lone surrogate), or None."""
    match = _BAD_CHARACTERS.search(value)
    if match is None:
        return None
    return "NUL characters are not allowed." if match.group() == "\x00" else "Lone UTF-16 surrogates are not allowed."


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"Number out of range: {text[:40]}")
    return value


def _too_deep(data: Any, max_depth: int) -> bool:
    """Whether containers nest deeper than ``max_depth``. Iterative, so its own depth cannot overflow."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            return True
        for item in value.values() if value.__class__ is dict else value:
            if item.__class__ is dict or item.__class__ is list:
                stack.append((item, depth + 1))
    return False


def _bad_string(data: Any) -> str | None:
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if (problem := string_error(value)) is not None:
                return problem
        elif isinstance(value, dict):
            for key, item in value.items():
                if (problem := string_error(key)) is not None:
                    return problem
                stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)
    return None


# In JSON text, a NUL or a surrogate can only arrive as a \u escape (raw control characters are a syntax error and
# UTF-8 cannot encode surrogates), so documents without such an escape skip the walk over every string.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def loads(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` for request bodies: ``ValueError`` (with a message) for invalid JSON, nesting deeper than
    ``max_depth``, NUL characters, lone surrogates and non-finite numbers."""
    try:
        data = json.loads(text, parse_constant=strict_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(f"nested deeper than {max_depth} levels.")
    if data.__class__ in (dict, list) and _too_deep(data, max_depth):
        raise ValueError(f"nested deeper than {max_depth} levels.")
    if "\\u" in text and _SUSPECT_ESCAPE.search(text) and (problem := _bad_string(data)) is not None:
        raise ValueError(problem)
    return data


class SafeJSONParser(JSONParser):
    """DRF's JSON parser with :func:`loads`: too deep, NUL, lone surrogates and non-finite numbers are a 400
    ``parse_error`` before any view or serializer sees the data."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        try:
            text = codecs.getreader(encoding)(stream).read()
            return loads(text)
        except (ValueError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}")
