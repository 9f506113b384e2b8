"""EventBridge events as EC2 and AWS Health send them, parsed into what the platform acts on. Pure: no Django models,
no AWS. The real JSON shapes are kept as test fixtures (tests/interruptions/fixtures)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

SPOT_WARNING = "EC2 Spot Instance Interruption Warning"
REBALANCE = "EC2 Instance Rebalance Recommendation"
STATE_CHANGE = "EC2 Instance State-change Notification"
HEALTH = "AWS Health Event"
DETAIL_TYPES = (SPOT_WARNING, REBALANCE, STATE_CHANGE, HEALTH)
#: AWS's notice ahead of a spot interruption (best effort).
SPOT_NOTICE = timedelta(minutes=2)

KIND_OF = {
    SPOT_WARNING: "spot_interruption",
    REBALANCE: "rebalance",
    STATE_CHANGE: "state_change",
    HEALTH: "scheduled_change",
}


class MalformedEvent(ValueError):
    """The message is not an EventBridge event the platform knows."""


@dataclass(frozen=True)
class ParsedEvent:
    event_id: str
    kind: str
    detail_type: str
    aws_account_id: str
    region: str
    instance_id: str
    occurred_at: datetime
    action_at: datetime | None = None
    state: str = ""
    payload: dict[str, Any] = field(default_factory=dict, compare=False)


def _time(value: Any) -> datetime | None:
    """An ISO 8601 time (EventBridge's ``time``) or an RFC 1123 one (AWS Health's ``startTime``), aware UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse(body: str | bytes | dict) -> list[ParsedEvent]:
    """One EventBridge event → one parsed event per instance it names (an AWS Health event may name several).

    Raises :class:`MalformedEvent` for anything else (the consumer stores nothing, counts it and deletes it)."""
    try:
        event = body if isinstance(body, dict) else json.loads(body)
    except (TypeError, ValueError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise MalformedEvent("not a JSON object")
    detail_type = event.get("detail-type")
    event_id = event.get("id")
    detail = event.get("detail")
    if detail_type not in DETAIL_TYPES:
        raise MalformedEvent(f"unknown detail-type {detail_type!r}")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 100 or not isinstance(detail, dict):
        raise MalformedEvent("missing id or detail")
    occurred = _time(event.get("time"))
    if occurred is None:
        raise MalformedEvent("missing or bad time")
    common = {
        "kind": KIND_OF[detail_type],
        "detail_type": detail_type,
        "aws_account_id": str(event.get("account") or "")[:12],
        "region": str(event.get("region") or "")[:32],
        "occurred_at": occurred,
        "payload": event,
    }
    if detail_type == HEALTH:
        if str(detail.get("service") or "").upper() != "EC2":
            raise MalformedEvent("an AWS Health event of another service")
        if detail.get("eventTypeCategory") != "scheduledChange":
            raise MalformedEvent("an AWS Health event that is not a scheduled change")
        start = _time(detail.get("startTime"))
        instances = [
            e.get("entityValue")
            for e in detail.get("affectedEntities") or []
            if isinstance(e, dict) and str(e.get("entityValue") or "").startswith("i-")
        ]
        if not instances:
            raise MalformedEvent("an AWS Health event naming no instance")
        return [
            ParsedEvent(
                event_id=f"{event_id}:{instance}" if len(instances) > 1 else event_id,
                instance_id=instance[:32],
                action_at=start,
                state=str(detail.get("eventTypeCode") or "")[:64],
                **common,
            )
            for instance in sorted(set(instances))
        ]
    instance = detail.get("instance-id")
    if not isinstance(instance, str) or not instance.startswith("i-") or len(instance) > 32:
        raise MalformedEvent("missing instance-id")
    if detail_type == SPOT_WARNING:
        return [
            ParsedEvent(
                event_id=event_id,
                instance_id=instance,
                action_at=occurred + SPOT_NOTICE,
                state=str(detail.get("instance-action") or "terminate")[:64],
                **common,
            )
        ]
    if detail_type == STATE_CHANGE:
        state = detail.get("state")
        if not isinstance(state, str) or not state:
            raise MalformedEvent("a state change without its state")
        return [ParsedEvent(event_id=event_id, instance_id=instance, state=state[:64], **common)]
    return [ParsedEvent(event_id=event_id, instance_id=instance, **common)]


def spot_warning(*, instance_id: str, account: str, region: str, at: datetime, event_id: str) -> dict[str, Any]:
    """A spot interruption warning as EventBridge delivers it (the simulated world and the benchmark inject these)."""
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": event_id,
        "detail-type": SPOT_WARNING,
        "source": "aws.ec2",
        "account": account,
        "time": stamp,
        "region": region,
        "resources": [f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "instance-action": "terminate"},
    }
