"""Auto Scaling: groups, desired capacity, and detaching instances."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cloud.errors import NotFound
from cloud.session import AccountSession, call, paginate
from cloud.types import AutoScalingGroup, AutoScalingGroupResize, GroupSize

#: DescribeAutoScalingGroups and DetachInstances take at most this many names / ids per call.
_BATCH = 50


def _group(raw: Mapping[str, Any]) -> AutoScalingGroup:
    template = raw.get("LaunchTemplate") or (raw.get("MixedInstancesPolicy") or {}).get("LaunchTemplate", {}).get(
        "LaunchTemplateSpecification", {}
    )
    return AutoScalingGroup(
        name=raw["AutoScalingGroupName"],
        min_size=int(raw.get("MinSize", 0)),
        max_size=int(raw.get("MaxSize", 0)),
        desired_capacity=int(raw.get("DesiredCapacity", 0)),
        instance_ids=tuple(i["InstanceId"] for i in raw.get("Instances") or ()),
        zones=tuple(raw.get("AvailabilityZones") or ()),
        launch_template_id=(template or {}).get("LaunchTemplateId", "") or "",
        launch_template_name=(template or {}).get("LaunchTemplateName", "") or "",
        tags={t["Key"]: t.get("Value", "") for t in raw.get("Tags") or ()},
        subnet_ids=tuple(s for s in (raw.get("VPCZoneIdentifier") or "").split(",") if s),
        launch_template_version=str((template or {}).get("Version", "") or ""),
    )


def describe_auto_scaling_groups(session: AccountSession, *, names: Sequence[str] = ()) -> list[AutoScalingGroup]:
    """The named groups (all groups of the region when empty)."""
    client = session.client("autoscaling")
    if not names:
        return [
            _group(g)
            for g in paginate(
                client, "describe_auto_scaling_groups", result_key="AutoScalingGroups", retry=session.retry
            )
        ]
    out: list[AutoScalingGroup] = []
    for i in range(0, len(names), _BATCH):
        batch = list(names[i : i + _BATCH])
        raw = paginate(
            client,
            "describe_auto_scaling_groups",
            result_key="AutoScalingGroups",
            retry=session.retry,
            AutoScalingGroupNames=batch,
        )
        out.extend(_group(g) for g in raw)
    return out


def set_desired_capacity(
    session: AccountSession, *, name: str, desired_capacity: int, honor_cooldown: bool = False
) -> None:
    """Set a group's desired capacity."""
    call(
        session.client("autoscaling"),
        "set_desired_capacity",
        retry=session.retry,
        AutoScalingGroupName=name,
        DesiredCapacity=desired_capacity,
        HonorCooldown=honor_cooldown,
    )


def update_group_size(
    session: AccountSession, *, name: str, min_size: int, max_size: int, desired_capacity: int
) -> None:
    """Set min, max and desired together (scaling to zero needs min 0 first)."""
    call(
        session.client("autoscaling"),
        "update_auto_scaling_group",
        retry=session.retry,
        AutoScalingGroupName=name,
        MinSize=min_size,
        MaxSize=max_size,
        DesiredCapacity=desired_capacity,
    )


def detach_instances(
    session: AccountSession, *, name: str, instance_ids: Sequence[str], decrement_desired_capacity: bool = True
) -> None:
    """Detach instances from a group (so that the group does not replace them when we terminate them)."""
    for i in range(0, len(instance_ids), _BATCH):
        call(
            session.client("autoscaling"),
            "detach_instances",
            retry=session.retry,
            AutoScalingGroupName=name,
            InstanceIds=list(instance_ids[i : i + _BATCH]),
            ShouldDecrementDesiredCapacity=decrement_desired_capacity,
        )


def resize_group(
    session: AccountSession, *, name: str, min_size: int, max_size: int, desired_capacity: int
) -> AutoScalingGroupResize:
    """Set a group's min, max and desired capacity together; returns the sizes before and after.
    :class:`cloud.errors.NotFound` when the group does not exist."""
    found = describe_auto_scaling_groups(session, names=[name])
    if not found:
        raise NotFound(
            f"Auto Scaling group {name} not found", service="autoscaling", operation="DescribeAutoScalingGroups"
        )
    current = found[0]
    before = GroupSize(current.min_size, current.max_size, current.desired_capacity)
    after = GroupSize(min_size, max_size, desired_capacity)
    if after != before:
        update_group_size(session, name=name, min_size=min_size, max_size=max_size, desired_capacity=desired_capacity)
    return AutoScalingGroupResize(name, before, after)
