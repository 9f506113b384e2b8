"""EventBridge: the rules that deliver EC2 interruption events to a linked account's queue."""

from __future__ import annotations

import json

from cloud.errors import InvalidRequest, NotFound
from cloud.session import AccountSession, call, paginate


def rules_targeting(session: AccountSession, *, target_arn: str) -> list[str]:
    """Names of the rules of the default event bus that deliver to ``target_arn``."""
    return list(
        paginate(
            session.client("events"),
            "list_rule_names_by_target",
            result_key="RuleNames",
            retry=session.retry,
            TargetArn=target_arn,
        )
    )


def rule_patterns(session: AccountSession, *, names: list[str]) -> dict[str, str]:
    """Each named rule's event pattern (JSON text); rules that do not exist are left out."""
    out: dict[str, str] = {}
    client = session.client("events")
    for name in names:
        try:
            raw = call(client, "describe_rule", retry=session.retry, Name=name)
        except NotFound:
            continue
        out[name] = str(raw.get("EventPattern") or "")
    return out


def put_event(session: AccountSession, *, source: str, detail_type: str, detail: dict, resources: list[str]) -> str:
    """Put one event on the default bus (the simulated world injects EC2's events this way); returns its id."""
    raw = call(
        session.client("events"),
        "put_events",
        retry=session.retry,
        Entries=[{"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "Resources": resources}],
    )
    entry = (raw.get("Entries") or [{}])[0]
    if entry.get("ErrorCode"):
        raise InvalidRequest(entry.get("ErrorMessage") or entry["ErrorCode"], code=entry["ErrorCode"])
    return str(entry.get("EventId", ""))


def ensure_interruption_rules(session: AccountSession, *, queue_arn: str, prefix: str = "spotopt") -> list[str]:
    """The regional template's rules, for the simulated world: one per event type, each delivering to the queue."""
    names = []
    for suffix, pattern in RULES.items():
        name = f"{prefix}-{suffix}"
        call(session.client("events"), "put_rule", retry=session.retry, Name=name, EventPattern=json_dumps(pattern))
        call(
            session.client("events"),
            "put_targets",
            retry=session.retry,
            Rule=name,
            Targets=[{"Id": "interruption-queue", "Arn": queue_arn}],
        )
        names.append(name)
    return names


def json_dumps(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"))


#: The EventBridge rules of the regional template (rule name suffix → event pattern).
RULES: dict[str, dict] = {
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    "scheduled-change": {
        "source": ["aws.health"],
        "detail-type": ["AWS Health Event"],
        "detail": {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]},
    },
}
