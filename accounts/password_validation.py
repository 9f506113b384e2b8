"""Password rules beyond Django's own: not only whitespace, and not made of the account's email address."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError


class NotOnlyWhitespaceValidator:
    """Eight spaces pass a length check; they are still no password."""

    def validate(self, password: str, user: Any = None) -> None:
        if not password.strip():
            raise ValidationError("The password cannot be only whitespace.", code="password_only_whitespace")

    def get_help_text(self) -> str:
        return "Your password cannot be only whitespace."


def _words(email: str) -> set[str]:
    """The pieces of an address an attacker tries first: ``jane.doe@acme.io`` → jane, doe, janedoe, acme, io, …"""
    email = email.lower()
    local, _, domain = email.partition("@")
    words = set(re.findall(r"[a-z0-9]+", email))
    words.add(re.sub(r"[^a-z0-9]", "", local))
    words.add(re.sub(r"[^a-z0-9]", "", domain))
    return {w for w in words if w}


def _made_of(text: str, words: set[str]) -> bool:
    """Whether ``text`` is a concatenation of ``words`` (each any number of times)."""
    reachable = [True] + [False] * len(text)
    for end in range(1, len(text) + 1):
        reachable[end] = any(reachable[end - len(w)] and text.endswith(w, 0, end) for w in words if len(w) <= end)
    return reachable[len(text)]


class NotFromEmailValidator:
    """Refuse passwords built from the account's email address: its letters, once digits and punctuation are
    taken out, are pieces of the address (``Jane.Doe2024!`` for ``jane.doe@acme.io``, ``acme-jane-1``)."""

    def validate(self, password: str, user: Any = None) -> None:
        email = getattr(user, "email", "") or ""
        if not email:
            return
        letters = re.sub(r"[^a-z]", "", password.lower())
        if letters and _made_of(letters, {re.sub(r"[^a-z]", "", w) for w in _words(email)} - {""}):
            raise ValidationError("The password cannot be made from your email address.", code="password_from_email")

    def get_help_text(self) -> str:
        return "Your password cannot be made from your email address."
