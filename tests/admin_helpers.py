"""Driving Django admin in tests: a logged-in super admin, the form as the page shows it, and the audit entry the
write must leave (the admin as actor, with the request's address, user agent and request id)."""

from __future__ import annotations

from typing import Any

import pytest
from django.forms import CheckboxInput
from django.test import Client

from audit.models import AuditLog

USER_AGENT = "AdminTest/1.0 (admin front door)"
REQUEST_ID = "admin-test-request-1"


@pytest.fixture
def admin_web(super_admin) -> Client:
    client = Client(HTTP_USER_AGENT=USER_AGENT, HTTP_X_REQUEST_ID=REQUEST_ID)
    client.force_login(super_admin)
    return client


def form_data(response) -> dict[str, Any]:
    """What the browser would post back from an admin add/change page, unchanged (inline management forms too)."""
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form[name].value()
        if isinstance(field.widget, CheckboxInput):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else value
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management[name].value()
    return data


def post_form(client: Client, url: str, changes: dict[str, Any]):
    """Open ``url``, change some inputs (``None`` unchecks a box) and save."""
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    data = form_data(page)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return client.post(url, data)


def form_errors(response) -> dict[str, list[str]]:
    """The errors an admin page shows on its form ({} when the save went through)."""
    if response.status_code != 200 or response.context is None or "adminform" not in response.context:
        return {}
    form = response.context["adminform"].form
    return {k: list(v) for k, v in form.errors.items()}


def admin_entry(action: str, admin_user) -> AuditLog:
    """The one audit entry ``action`` that ``admin_user`` made through the admin, checked for request metadata."""
    entries = list(AuditLog.objects.filter(action=action, actor_id=str(admin_user.pk)))
    assert len(entries) == 1, [(e.action, e.actor_label) for e in AuditLog.objects.all()]
    entry = entries[0]
    assert entry.actor_type == AuditLog.ActorType.USER
    assert entry.actor_label == admin_user.email
    assert entry.ip == "127.0.0.1"
    assert entry.user_agent == USER_AGENT
    assert entry.request_id == REQUEST_ID
    return entry


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []
