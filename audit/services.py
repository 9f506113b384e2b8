"""The one way to write the audit log. Every mutation in the product calls :func:`record`."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from spotopt.context import current_request, current_request_id
from spotopt.middleware import client_ip

from .models import AuditChainHead, AuditCheckpoint, AuditLog, chain_key
from .verification import Anchor, verify_chain

#: Checkpoints are logged on this logger as JSON lines (``{"audit_checkpoint": {...}}``): the copy outside the database
#: that ``verify_audit --checkpoints FILE`` reads back.
checkpoint_logger = logging.getLogger("audit.checkpoint")

MASK = "********"
# Shown in ``after`` when a masked value differs from the one in ``before``: a diff can say "rotated" without
# revealing either value.
MASK_CHANGED = "******** (changed)"

# Key names whose values are credentials, matched as whole words of the key after it is normalised to snake_case
# ("secretAccessKey" -> "secret_access_key", "X-Api-Key" -> "x_api_key"), at any depth of before/after.
# A bare "key" is deliberately not here: Kubernetes taints and labels have a "key" that is not a secret.
_SECRET_KEY = re.compile(
    r"(^|_)(password|passwd|passphrase|secret|token|refresh|access|access_key|session_token|api_key|raw_key|"
    r"key_hash|private_key|signing_key|encryption_key|ssh_key|credentials?|authorization|cookie|otp)($|_)",
)
# Values that are credentials whatever their key says: JWTs, PEM private keys, Authorization header values.
_SECRET_VALUE = re.compile(
    r"^(eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]+|-----BEGIN [A-Z ]*PRIVATE KEY-----.*|(Bearer|Api-Key|Basic)\s+\S{8,})$",
    re.S,
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _normalise_key(key: str) -> str:
    return _CAMEL.sub("_", key).replace("-", "_").replace(" ", "_").lower()


def is_secret_key(key: Any) -> bool:
    return bool(_SECRET_KEY.search(_normalise_key(str(key))))


def _is_secret_value(value: Any) -> bool:
    return isinstance(value, str) and bool(_SECRET_VALUE.match(value.strip()))


def _named_secret(value: dict) -> bool:
    """``{"name": "DB_PASSWORD", "value": "..."}``: an environment variable or a tag holding a secret."""
    name = value.get("name", value.get("Name", value.get("Key")))
    return isinstance(name, str) and is_secret_key(name)


def mask_secrets(value: Any) -> Any:
    """A JSON-safe copy of ``value`` with every credential-like field replaced by a mask.

    Empty values (None, "") stay visible: "no password was set" is information, not a secret; so do numbers and
    booleans under a secret-sounding key ("revoked_refresh_tokens": 3, "password_set": true). NUL characters are
    dropped because PostgreSQL's jsonb cannot store them.
    """
    if isinstance(value, dict):
        named = _named_secret(value)
        masked = {}
        for k, v in value.items():
            secret = is_secret_key(k) or (named and k in ("value", "Value"))
            keep = v in (None, "") or isinstance(v, bool | int | float)
            masked[str(k).replace("\x00", "")] = MASK if secret and not keep else mask_secrets(v)
        return masked
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    if isinstance(value, bytes):
        return MASK  # raw bytes in an audit diff are key material more often than not
    if _is_secret_value(value):
        return MASK
    if isinstance(value, str):
        return value.replace("\x00", "")
    return value


def _mark_rotated(before: Any, after: Any, masked_after: Any) -> Any:
    """Where a masked key's value differs between ``before`` and ``after``, say so in the masked ``after``."""
    if not (isinstance(before, dict) and isinstance(after, dict) and isinstance(masked_after, dict)):
        return masked_after
    for key, new in after.items():
        k = str(key)
        if k not in masked_after or key not in before:
            continue
        if masked_after[k] == MASK and before[key] != new:
            masked_after[k] = MASK_CHANGED
        elif isinstance(new, dict):
            masked_after[k] = _mark_rotated(before[key], new, masked_after[k])
    return masked_after


def _json_safe(value: Any) -> Any:
    """Masked, then through JSON and back, so that what is hashed is exactly what the database will return."""
    if value is None:
        return None
    return json.loads(json.dumps(mask_secrets(value), cls=DjangoJSONEncoder))


def _text(value: Any, limit: int) -> str:
    # PostgreSQL text cannot hold NUL; and what is hashed must be what is stored, so truncate before hashing.
    return str(value or "").replace("\x00", "")[:limit]


def _ip(value: Any) -> str | None:
    """The canonical text of an IP address (as PostgreSQL's inet returns it), or None when it is not one."""
    if not value:
        return None
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


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
    """The chain's head row, locked until the caller's transaction ends: appends to one chain are serialized."""
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
    ip: str | None = None,
) -> AuditLog:
    """Append one entry to the organization's chain (or the platform chain when there is no organization).

    ``actor`` is a User, an ApiKey, a label for system jobs, or None to take it from the request. ``request`` defaults
    to the request being served, if any; ``ip`` overrides the request's address. ``before``/``after`` are stored with
    secrets masked. Runs inside the caller's transaction: if the change rolls back, so does its audit entry.
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
    masked_after = _json_safe(after)
    if before is not None and after is not None:
        masked_after = _mark_rotated(before, after, masked_after)
    chain = chain_key(organization_id)
    with transaction.atomic():
        head = _lock_head(chain)
        entry = AuditLog(
            organization_id=organization_id,
            chain=chain,
            seq=head.seq + 1,
            actor_type=actor_type,
            actor_id=_text(actor_id, 64),
            actor_label=_text(actor_label, 255),
            action=_text(action, 100),
            resource_type=_text(resource_type, 50),
            resource_id=_text(resource_id, 64),
            before=_json_safe(before),
            after=masked_after,
            ip=_ip(ip or (client_ip(request) if meta else None)),
            user_agent=_text(meta.get("HTTP_USER_AGENT"), 512),
            request_id=_text(getattr(request, "request_id", "") or current_request_id(), 128),
            prev_hash=head.last_hash,
        )
        entry.hash = entry.compute_hash()
        entry.save(force_insert=True)
        # The head row is not an audit entry; this UPDATE goes through the plain manager, not AuditLogQuerySet.
        AuditChainHead.objects.filter(chain=chain).update(seq=entry.seq, last_hash=entry.hash)
    return entry


@dataclass
class CheckpointOutcome:
    """What :func:`checkpoint_create_all` did for one chain."""

    WRITTEN = "written"
    UNCHANGED = "unchanged"  # the head has not moved since the chain's last checkpoint
    BROKEN = "broken"  # the chain does not verify since its last checkpoint: nothing was signed

    chain: str
    status: str
    checkpoint: AuditCheckpoint | None = None
    message: str = ""

    def describe(self) -> str:
        if self.status == self.WRITTEN and self.checkpoint is not None:
            return f"chain {self.chain}: checkpoint at seq {self.checkpoint.seq} ({self.checkpoint.hash[:12]}…)"
        if self.status == self.UNCHANGED:
            return f"chain {self.chain}: unchanged since its last checkpoint"
        return f"chain {self.chain}: NOT signed: {self.message}"


def checkpoint_create_all(
    *, key: str | None = None, should_stop: Callable[[], bool] | None = None
) -> list[CheckpointOutcome]:
    """Sign the head ``(seq, hash)`` of every chain that moved since its last checkpoint, store it and log it.

    A head is signed only after the entries since the chain's previous checkpoint verify against it (or, for a chain's
    first checkpoint, the whole chain), so a checkpoint never blesses a tampered tail; a chain that does not verify is
    reported and left unsigned. Not itself an audit entry: a checkpoint is a statement about the chains, and an entry
    for it would move the platform chain every hour.
    """
    key = key or settings.AUDIT_SIGNING_KEY
    # The latest checkpoint of each chain, in one query (the (chain, seq) unique index serves the subquery).
    latest_seq = AuditCheckpoint.objects.filter(chain=OuterRef("chain")).order_by("-seq").values("seq")[:1]
    latest = {cp.chain: cp for cp in AuditCheckpoint.objects.filter(seq=Subquery(latest_seq))}
    outcomes: list[CheckpointOutcome] = []
    for head in AuditChainHead.objects.filter(seq__gt=0).order_by("chain"):
        if should_stop is not None and should_stop():
            break
        previous = latest.get(head.chain)
        if previous is not None and (previous.seq, previous.hash) == (head.seq, head.last_hash):
            outcomes.append(CheckpointOutcome(chain=head.chain, status=CheckpointOutcome.UNCHANGED))
            continue
        outcomes.append(_checkpoint_chain(head.chain, previous, key))
    return outcomes


def _checkpoint_chain(chain: str, previous: AuditCheckpoint | None, key: str) -> CheckpointOutcome:
    anchor = None
    if previous is not None:
        if not previous.signature_valid(key):
            return _broken(chain, f"its last checkpoint (seq {previous.seq}) has an invalid signature")
        anchor = Anchor(seq=previous.seq, hash=previous.hash)
    verdict = verify_chain(chain, anchor=anchor)
    if not verdict.ok:
        return _broken(chain, verdict.describe())
    if verdict.entries == 0:
        return CheckpointOutcome(chain=chain, status=CheckpointOutcome.UNCHANGED)
    checkpoint = AuditCheckpoint(chain=chain, seq=verdict.last_seq, hash=verdict.last_hash, created_at=timezone.now())
    checkpoint.signature = checkpoint.sign(key)
    try:
        with transaction.atomic():
            checkpoint.save(force_insert=True)
    except IntegrityError:
        # A concurrent run signed this very position first; its checkpoint stands.
        return CheckpointOutcome(chain=chain, status=CheckpointOutcome.UNCHANGED)
    checkpoint_logger.info(
        "audit checkpoint", extra={"audit_checkpoint": {**checkpoint.payload(), "signature": checkpoint.signature}}
    )
    return CheckpointOutcome(chain=chain, status=CheckpointOutcome.WRITTEN, checkpoint=checkpoint)


def _broken(chain: str, message: str) -> CheckpointOutcome:
    checkpoint_logger.error("audit chain not checkpointed: %s", message, extra={"chain": chain})
    return CheckpointOutcome(chain=chain, status=CheckpointOutcome.BROKEN, message=message)
