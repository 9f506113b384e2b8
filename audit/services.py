"""The one way to write the audit log. Every mutation in the product calls :func:`record`."""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction

from spotopt.context import current_request, current_request_id

from .models import AuditChainHead, AuditLog, chain_key

MASK = "********"
# Keys whose values are credentials. Matched on the key name, at any depth of before/after.
_SECRET_KEY = re.compile(
    r"(^|_)(password|passwd|secret|token|refresh|access_key|secret_access_key|session_token|api_key|key_hash|"
    r"private_key|credentials?|authorization)($|_)",
    re.I,
)


def mask_secrets(value: Any) -> Any:
    """A JSON-safe copy of ``value`` with every credential-like field replaced by a mask."""
    if isinstance(value, dict):
        return {
            str(k): (MASK if _SECRET_KEY.search(str(k)) and v not in (None, "") else mask_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    return value


def _json_safe(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(json.dumps(mask_secrets(value), cls=DjangoJSONEncoder))


def _actor_from(actor: Any, request: Any) -> tuple[str, str, str]:
    """(actor_type, actor_id, actor_label) from an explicit actor, else the request's user or API key."""
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        auth = getattr(request, "auth", None)
        if user is not None and getattr(user, "is_authenticated", False):
            actor = user
        elif auth is not None and hasattr(auth, "prefix"):
            actor = auth
    if actor is None:
        return AuditLog.ActorType.SYSTEM, "", "system"
    if isinstance(actor, str):
        return AuditLog.ActorType.SYSTEM, "", actor
    if hasattr(actor, "prefix") and hasattr(actor, "cluster_id"):
        return AuditLog.ActorType.API_KEY, str(actor.pk), f"api-key:{actor.prefix}"
    return AuditLog.ActorType.USER, str(actor.pk), getattr(actor, "email", str(actor))


def _lock_head(chain: str) -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(chain=chain).first()
    if head is not None:
        return head
    try:
        with transaction.atomic():
            AuditChainHead.objects.create(chain=chain)
    except IntegrityError:
        pass  # another writer created it first; lock theirs
    return AuditChainHead.objects.select_for_update().get(chain=chain)


def record(
    *,
    action: str,
    organization: Any = None,
    organization_id: int | None = None,
    resource: models.Model | None = None,
    resource_type: str = "",
    resource_id: Any = "",
    before: dict | None = None,
    after: dict | None = None,
    actor: Any = None,
    request: Any = None,
) -> AuditLog:
    """Append one entry to the organization's chain (or the platform chain when there is no organization).

    ``actor`` is a User, an ApiKey, a label for system jobs, or None to take it from the request. ``request`` defaults
    to the request being served, if any. Runs inside the caller's transaction: if the change rolls back, so does its
    audit entry.
    """
    if request is None:
        request = current_request()
    if organization is not None:
        organization_id = organization.pk
    if resource is not None:
        resource_type = resource_type or resource._meta.model_name
        resource_id = resource_id or resource.pk
    actor_type, actor_id, actor_label = _actor_from(actor, request)
    meta = getattr(request, "META", {}) if request is not None else {}
    chain = chain_key(organization_id)
    with transaction.atomic():
        head = _lock_head(chain)
        entry = AuditLog(
            organization_id=organization_id,
            chain=chain,
            seq=head.seq + 1,
            actor_type=actor_type,
            actor_id=actor_id,
            actor_label=actor_label[:255],
            action=action,
            resource_type=resource_type,
            resource_id=str(resource_id or ""),
            before=_json_safe(before),
            after=_json_safe(after),
            ip=meta.get("REMOTE_ADDR") or None,
            user_agent=(meta.get("HTTP_USER_AGENT") or "")[:512],
            request_id=getattr(request, "request_id", "") or current_request_id(),
            prev_hash=head.last_hash,
        )
        entry.hash = entry.compute_hash()
        entry.save(force_insert=True)
        AuditChainHead.objects.filter(chain=chain).update(seq=entry.seq, last_hash=entry.hash)
    return entry
