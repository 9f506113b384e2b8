"""EventBridge: the rules that deliver EC2 interruption events to a linked account's queue."""

from __future__ import annotations

from cloud.errors import NotFound
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
