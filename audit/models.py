"""The audit log: append-only and hash-chained per organization (DESIGN.md §8)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import models
from django.utils import timezone

from spotopt.tenancy import TenantQuerySet


class AuditLogQuerySet(TenantQuerySet):
    def update(self, **kwargs):
        raise AuditLogImmutable("audit entries cannot be updated")

    def delete(self):
        raise AuditLogImmutable("audit entries cannot be deleted")


class AuditLogImmutable(Exception):
    pass


def chain_key(organization_id: int | None) -> str:
    return f"org:{organization_id}" if organization_id else "platform"


class AuditChainHead(models.Model):
    """The last entry of one chain. Appends lock this row so that concurrent writers never fork a chain."""

    chain = models.CharField(max_length=40, primary_key=True)
    seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="")

    class Meta:
        db_table = "audit_chain_heads"

    def __str__(self) -> str:
        return f"{self.chain}#{self.seq}"


class AuditLog(models.Model):
    """One recorded change. ``hash`` = SHA-256(prev_hash + canonical content); see :meth:`compute_hash`."""

    class ActorType(models.TextChoices):
        USER = "user", "User"
        API_KEY = "api_key", "API key"
        SYSTEM = "system", "System"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    organization = models.ForeignKey(
        "accounts.Organization",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    chain = models.CharField(max_length=40)
    seq = models.BigIntegerField()
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    resource_type = models.CharField(max_length=50, blank=True)
    resource_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        db_table = "audit_logs"
        ordering = ("-created_at", "-id")
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_chain_seq_unique")]
        indexes = [
            # The API's list: an organization's entries, newest first.
            models.Index(fields=["organization", "-created_at", "-id"], name="audit_org_created_idx"),
            models.Index(fields=["resource_type", "resource_id"], name="audit_resource_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.resource_type}:{self.resource_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise AuditLogImmutable("audit entries cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutable("audit entries cannot be deleted")

    def canonical_content(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "seq": self.seq,
            "created_at": self.created_at.isoformat(timespec="microseconds"),
            "organization_id": self.organization_id,
            "actor_type": self.actor_type,
            "actor_id": self.actor_id,
            "actor_label": self.actor_label,
            "action": self.action,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "before": self.before,
            "after": self.after,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "request_id": self.request_id,
        }

    def compute_hash(self) -> str:
        canonical = json.dumps(self.canonical_content(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256((self.prev_hash + canonical).encode("utf-8")).hexdigest()
