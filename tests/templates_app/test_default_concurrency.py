"""Exactly one default per organization, even when set-default calls race (PostgreSQL: real row locks)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from audit.models import AuditLog
from templates_app.models import NodeTemplate
from templates_app.services import template_set_default
from tests.factories import NodeTemplateFactory, OrganizationFactory


@pytest.mark.django_db(transaction=True)
def test_pg_concurrent_set_default_leaves_exactly_one_default():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    org = OrganizationFactory()
    templates = [NodeTemplateFactory(organization=org, is_default=(i == 0)) for i in range(8)]
    barrier = threading.Barrier(len(templates))
    errors: list[BaseException] = []

    def worker(template: NodeTemplate) -> None:
        try:
            barrier.wait(timeout=10)
            template_set_default(template=template, actor="test")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(t,)) for t in templates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert NodeTemplate.objects.filter(organization=org, is_default=True).count() == 1
    # Serialized: every call but the one for the template that was already default moved the flag once, in turn.
    moves = list(AuditLog.objects.filter(action="node_template.set_default").order_by("seq"))
    assert 1 <= len(moves) <= len(templates)
    for earlier, later in zip(moves, moves[1:], strict=False):
        assert later.before["default_template_id"] == earlier.after["default_template_id"]
    final = NodeTemplate.objects.get(organization=org, is_default=True)
    assert moves[-1].after["default_template_id"] == final.pk


@pytest.mark.django_db(transaction=True)
def test_pg_partial_unique_index_refuses_a_second_default():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    from django.db import IntegrityError

    org = OrganizationFactory()
    NodeTemplateFactory(organization=org, is_default=True)
    with pytest.raises(IntegrityError):
        NodeTemplate.objects.create(organization=org, name="second", is_default=True)
