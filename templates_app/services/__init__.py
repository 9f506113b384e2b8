"""Writes of node templates: create, update, delete, set default. Each validates, saves and audits.

Every write takes the organization's row lock first (``SELECT … FOR UPDATE`` on PostgreSQL), so that the org's
template writes are serialized: name uniqueness is checked without a race and the default moves from one template to
another in one step, never leaving zero or two defaults (the partial unique constraint is the last line of defence).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from accounts.models import Organization
from audit.services import record
from spotopt.errors import Conflict, ValidationFailed

from ..models import NodeTemplate
from ..signals import template_users

# The fields an operator sets (the API's writable fields, the console form's fields, the audit snapshot).
EDITABLE_FIELDS = (
    "name",
    "description",
    "architectures",
    "instance_families",
    "min_vcpu",
    "max_vcpu",
    "min_memory_gib",
    "max_memory_gib",
    "gpu",
    "exclude_burstable",
    "exclude_bare_metal",
    "current_generation_only",
    "capacity_types",
    "spot_fallback",
    "fallback_restore_minutes",
    "spot_diversity",
    "max_price_increase_pct",
    "zones",
    "strategy",
    "labels",
    "taints",
    "max_hourly_budget",
)


def template_snapshot(template: NodeTemplate) -> dict[str, Any]:
    """The template's settings as JSON-safe values, for the audit log's before/after."""
    data: dict[str, Any] = {"id": template.pk, "is_default": template.is_default}
    for field in EDITABLE_FIELDS:
        value = getattr(template, field)
        data[field] = str(value) if isinstance(value, Decimal) else value
    return data


def _lock_organization(organization_id: int) -> Organization:
    return Organization.objects.select_for_update().get(pk=organization_id)


def _normalize(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    if "instance_families" in data and isinstance(data["instance_families"], dict):
        families = data["instance_families"]
        data["instance_families"] = {
            "include": [p.strip().lower() if isinstance(p, str) else p for p in families.get("include") or []],
            "exclude": [p.strip().lower() if isinstance(p, str) else p for p in families.get("exclude") or []],
        } | {k: v for k, v in families.items() if k not in ("include", "exclude")}
    if isinstance(data.get("name"), str):
        data["name"] = data["name"].strip()
    for key in ("min_memory_gib", "max_memory_gib", "max_hourly_budget"):
        if data.get(key) is not None and not isinstance(data[key], Decimal):
            try:
                data[key] = Decimal(str(data[key]).strip())
            except InvalidOperation:
                pass  # left as given: validation reports it on the field
    return data


def _validate(template: NodeTemplate) -> None:
    from ..validation import template_errors

    errors = template_errors(template)
    if "name" not in errors and template.name:
        duplicate = NodeTemplate.objects.filter(organization_id=template.organization_id, name__iexact=template.name)
        if template.pk:
            duplicate = duplicate.exclude(pk=template.pk)
        if duplicate.exists():
            errors["name"] = [f'A template named "{template.name}" already exists.']
    if errors:
        raise ValidationFailed("The node template is not valid.", fields=errors)


def _save(template: NodeTemplate) -> None:
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError as exc:
        # Only reachable if a constraint the validation mirrors is broken by a concurrent writer without the lock.
        raise ValidationFailed("The node template is not valid.", fields={"name": [str(exc)]}) from exc


def template_draft(
    *, organization: Organization, data: dict[str, Any], base: NodeTemplate | None = None
) -> NodeTemplate:
    """An unsaved template from ``data`` (over ``base``'s settings when given), for previews. Never saved."""
    data = _normalize(data)
    template = NodeTemplate(organization=organization)
    if base is not None:
        for field in EDITABLE_FIELDS:
            setattr(template, field, getattr(base, field))
    for field, value in data.items():
        if field in EDITABLE_FIELDS:
            setattr(template, field, value)
    return template


@transaction.atomic
def template_create(*, organization: Organization, data: dict[str, Any], actor: Any = None) -> NodeTemplate:
    """Create a template. The organization's first template becomes its default; ``is_default: true`` makes the new
    one the default in the same transaction."""
    org = _lock_organization(organization.pk)
    data = _normalize(data)
    want_default = bool(data.pop("is_default", False))
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields={k: ["Unknown field."] for k in sorted(unknown)})
    template = NodeTemplate(organization=org, **data)
    if actor is not None and getattr(actor, "pk", None) and hasattr(actor, "email"):
        template.created_by = actor
    _validate(template)
    current_default = NodeTemplate.objects.filter(organization=org, is_default=True).first()
    template.is_default = want_default or current_default is None
    if template.is_default and current_default is not None:
        NodeTemplate.objects.filter(pk=current_default.pk).update(is_default=False)
    _save(template)
    record(
        action="node_template.created",
        organization=org,
        resource=template,
        after=template_snapshot(template),
        actor=actor,
    )
    return template


@transaction.atomic
def template_update(*, template: NodeTemplate, data: dict[str, Any], actor: Any = None) -> NodeTemplate:
    """Change some fields of a template (a PATCH). ``is_default: true`` makes it the default; a default cannot be
    unset directly (another template is made the default instead)."""
    org = _lock_organization(template.organization_id)
    template = NodeTemplate.objects.get(pk=template.pk)
    before = template_snapshot(template)
    data = _normalize(data)
    want_default = data.pop("is_default", None)
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields={k: ["Unknown field."] for k in sorted(unknown)})
    if want_default is False and template.is_default:
        raise ValidationFailed(
            "An organization always has a default template.",
            fields={"is_default": ["Make another template the default instead."]},
        )
    for field, value in data.items():
        setattr(template, field, value)
    _validate(template)
    if want_default and not template.is_default:
        NodeTemplate.objects.filter(organization=org, is_default=True).update(is_default=False)
        template.is_default = True
    after = template_snapshot(template)
    if after == before:
        return template
    _save(template)
    record(action="node_template.updated", organization=org, resource=template, before=before, after=after, actor=actor)
    return template


@transaction.atomic
def template_set_default(*, template: NodeTemplate, actor: Any = None) -> NodeTemplate:
    """Make ``template`` its organization's default, atomically: the old default is unset and the new one set in one
    transaction under the organization's lock. Idempotent."""
    org = _lock_organization(template.organization_id)
    previous = NodeTemplate.objects.filter(organization=org, is_default=True).first()
    template = NodeTemplate.objects.get(pk=template.pk)
    if previous is not None and previous.pk == template.pk:
        return template
    if previous is not None:
        NodeTemplate.objects.filter(pk=previous.pk).update(is_default=False)
    NodeTemplate.objects.filter(pk=template.pk).update(is_default=True)
    template.is_default = True
    record(
        action="node_template.set_default",
        organization=org,
        resource=template,
        before={
            "default_template_id": previous.pk if previous else None,
            "default_template": previous.name if previous else None,
        },
        after={"default_template_id": template.pk, "default_template": template.name},
        actor=actor,
    )
    return template


@transaction.atomic
def template_delete(*, template: NodeTemplate, actor: Any = None) -> None:
    """Delete a template. Refused (409) while a cluster policy names it. Deleting the default makes the oldest
    remaining template the default, so the organization keeps exactly one."""
    org = _lock_organization(template.organization_id)
    # Locked so that a policy being pointed at it (``policy_update`` locks it too) waits for the outcome.
    template = NodeTemplate.objects.select_for_update().get(pk=template.pk)
    names = [name for _, users in template_users.send(sender=NodeTemplate, template=template) for name in users]
    if names:
        raise Conflict(
            f"The template is used by {len(names)} cluster(s): {', '.join(names)}.",
            fields={"clusters": names},
            code="template_in_use",
        )
    before = template_snapshot(template)
    template_id = template.pk
    try:
        template.delete()
    except ProtectedError as exc:  # a policy started using it since the check above
        raise Conflict("The template is in use by a cluster.", code="template_in_use") from exc
    record(
        action="node_template.deleted",
        organization=org,
        resource_type="nodetemplate",
        resource_id=template_id,
        before=before,
        actor=actor,
    )
    if before["is_default"]:
        successor = NodeTemplate.objects.filter(organization=org).order_by("created_at", "id").first()
        if successor is not None:
            NodeTemplate.objects.filter(pk=successor.pk).update(is_default=True)
            record(
                action="node_template.set_default",
                organization=org,
                resource=successor,
                before={"default_template_id": template_id, "default_template": before["name"]},
                after={"default_template_id": successor.pk, "default_template": successor.name},
                actor=actor,
            )
