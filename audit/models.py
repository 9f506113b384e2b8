"""The audit log: append-only and hash-chained per organization (DESIGN.md §8).

Each organization has its own chain (``org:<id>``); platform-level events (an unknown email failing to log in, a
command run by an operator) go to the ``platform`` chain. An entry's ``hash`` covers its canonical content and the
previous entry's hash, so changing, removing or reordering any entry breaks the chain from that point on
(see :mod:`audit.verification`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

from django.db import models
from django.utils import timezone

from spotopt.tenancy import TenantQuerySet

PLATFORM_CHAIN = "platform"


class AuditLogImmutable(Exception):
    """Raised when code tries to change or remove an audit entry. A programming error, never user input."""


class AuditLogQuerySet(TenantQuerySet):
    """Scoped by ``for_user``; refuses bulk update and delete (``bulk_update`` goes through ``update`` too)."""

    def update(self, **kwargs):
        raise AuditLogImmutable("audit entries cannot be updated")

    def delete(self):
        raise AuditLogImmutable("audit entries cannot be deleted")

    # Django's admin and Collector use these private entry points; keep them shut as well.
    def _raw_delete(self, using):
        raise AuditLogImmutable("audit entries cannot be deleted")

    def _update(self, values):
        raise AuditLogImmutable("audit entries cannot be updated")


def chain_key(organization_id: int | None) -> str:
    """The chain an organization's entries belong to."""
    return f"org:{organization_id}" if organization_id else PLATFORM_CHAIN


class AuditChainHead(models.Model):
    """The last entry of one chain. Appends lock this row so that concurrent writers never fork a chain; the verifier
    compares it with the last entry it finds, so entries removed from the end of a chain are detected too."""

    chain = models.CharField(max_length=40, primary_key=True)
    seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="")

    class Meta:
        db_table = "audit_chain_heads"

    def __str__(self) -> str:
        return f"{self.chain}#{self.seq}"


class AuditLog(models.Model):
    """One recorded change. ``hash`` = SHA-256(prev_hash + canonical content); see :meth:`compute_hash`.

    Written only by :func:`audit.services.record`. Never updated or deleted: the model and queryset refuse it and, on
    PostgreSQL, a trigger rejects UPDATE, DELETE and TRUNCATE on the table (migration 0003).
    """

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
    action = models.CharField(max_length=100)
    resource_type = models.CharField(max_length=50, blank=True)
    resource_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        db_table = "audit_logs"
        ordering = ("-created_at", "-id")
        constraints = [
            # Also the index the verifier walks a chain by (WHERE chain = %s ORDER BY seq).
            models.UniqueConstraint(fields=["chain", "seq"], name="audit_chain_seq_unique"),
        ]
        indexes = [
            # The API's and console's list: an organization's entries, newest first.
            models.Index(fields=["organization", "-created_at", "-id"], name="audit_org_created_idx"),
            models.Index(fields=["resource_type", "resource_id"], name="audit_resource_idx"),
            # The action prefix filter (action LIKE 'cluster.%'): on PostgreSQL a btree only serves LIKE prefixes
            # with the pattern operator class when the collation is not C. Other backends ignore opclasses.
            models.Index(fields=["action"], name="audit_action_prefix_idx", opclasses=["varchar_pattern_ops"]),
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
        """Everything an entry asserts, in a form that survives a round trip through the database unchanged."""
        created_at = self.created_at
        if timezone.is_aware(created_at):
            # The database may hand the time back in another zone; the instant is what is hashed.
            created_at = created_at.astimezone(dt.UTC)
        return {
            "chain": self.chain,
            "seq": self.seq,
            "created_at": created_at.isoformat(timespec="microseconds"),
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
        return hash_content(self.prev_hash, self.canonical_content())

    @property
    def has_changes(self) -> bool:
        return self.before is not None or self.after is not None


def hash_content(prev_hash: str, content: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the canonical JSON of ``content`` (sorted keys, no whitespace, UTF-8).

    A function of its own so that an exported archive (``export_audit``) can be verified without a database.
    """
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


#: Every stored field of an entry, in reading order: the admin's detail and the CSV export (after ``id``) use it.
ENTRY_FIELDS = (
    "created_at",
    "organization_id",
    "chain",
    "seq",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "resource_type",
    "resource_id",
    "before",
    "after",
    "ip",
    "user_agent",
    "request_id",
    "prev_hash",
    "hash",
)


class AuditCheckpointQuerySet(models.QuerySet):
    """Checkpoints are appended, never changed: the same guards as the entries (and, on PostgreSQL, the trigger)."""

    def update(self, **kwargs):
        raise AuditLogImmutable("audit checkpoints cannot be updated")

    def delete(self):
        raise AuditLogImmutable("audit checkpoints cannot be deleted")

    def _raw_delete(self, using):
        raise AuditLogImmutable("audit checkpoints cannot be deleted")

    def _update(self, values):
        raise AuditLogImmutable("audit checkpoints cannot be updated")


class AuditCheckpoint(models.Model):
    """A signed statement that a chain's head was ``(seq, hash)`` at ``created_at``.

    ``signature`` is the HMAC-SHA256 of :meth:`payload` under ``AUDIT_SIGNING_KEY``, a key that lives outside the
    database. Whoever can rewrite the tail of a chain and its head row in the database cannot sign a new checkpoint,
    so the checkpoints taken before the rewrite still name the old hashes. Every checkpoint is also logged as a JSON
    line, a copy outside the database that catches checkpoints deleted from this table. Written only by
    :func:`audit.services.checkpoint_create_all`.
    """

    created_at = models.DateTimeField(default=timezone.now)
    chain = models.CharField(max_length=40)
    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=64)

    objects = AuditCheckpointQuerySet.as_manager()

    class Meta:
        db_table = "audit_checkpoints"
        ordering = ("chain", "seq")
        constraints = [
            # One checkpoint per chain position; also the index "the last checkpoint of this chain" reads.
            models.UniqueConstraint(fields=["chain", "seq"], name="audit_checkpoint_chain_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"checkpoint {self.chain}#{self.seq}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise AuditLogImmutable("audit checkpoints cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutable("audit checkpoints cannot be deleted")

    def payload(self) -> dict[str, Any]:
        """What is signed (and logged): the chain position and the time it was taken, in UTC."""
        return checkpoint_payload(chain=self.chain, seq=self.seq, hash=self.hash, created_at=self.created_at)

    def sign(self, key: str) -> str:
        return sign_checkpoint(self.payload(), key)

    def signature_valid(self, key: str) -> bool:
        return hmac.compare_digest(self.signature, self.sign(key))


def checkpoint_payload(*, chain: str, seq: int, hash: str, created_at: dt.datetime) -> dict[str, Any]:
    if timezone.is_aware(created_at):
        created_at = created_at.astimezone(dt.UTC)
    return {
        "chain": chain,
        "seq": seq,
        "hash": hash,
        "created_at": created_at.isoformat(timespec="microseconds"),
    }


def sign_checkpoint(payload: dict[str, Any], key: str) -> str:
    """HMAC-SHA256 (hex) of the payload's canonical JSON (sorted keys, no whitespace, UTF-8)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key.encode("utf-8"), canonical.encode("utf-8"), hashlib.sha256).hexdigest()
