"""EKS: clusters, managed node groups, and node group scaling."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud.session import AccountSession, call, paginate
from cloud.types import EksCluster, EksNodeGroup, GroupSize, NodeGroupResize


def list_clusters(session: AccountSession) -> list[str]:
    """Names of the EKS clusters in the session's region."""
    return list(
        paginate(
            session.client("eks"),
            "list_clusters",
            result_key="clusters",
            cursor_param="nextToken",
            cursor_key="nextToken",
            retry=session.retry,
        )
    )


def describe_cluster(session: AccountSession, *, name: str) -> EksCluster:
    """One EKS cluster; :class:`cloud.errors.NotFound` if it does not exist."""
    raw: Mapping[str, Any] = call(session.client("eks"), "describe_cluster", retry=session.retry, name=name)["cluster"]
    return EksCluster(
        name=raw["name"],
        arn=raw.get("arn", ""),
        status=raw.get("status", ""),
        version=raw.get("version", ""),
        endpoint=raw.get("endpoint", "") or "",
        vpc_id=(raw.get("resourcesVpcConfig") or {}).get("vpcId", "") or "",
        created_at=raw.get("createdAt"),
        tags=dict(raw.get("tags") or {}),
    )


def list_node_groups(session: AccountSession, *, cluster_name: str) -> list[str]:
    """Names of the managed node groups of a cluster."""
    return list(
        paginate(
            session.client("eks"),
            "list_nodegroups",
            result_key="nodegroups",
            cursor_param="nextToken",
            cursor_key="nextToken",
            retry=session.retry,
            clusterName=cluster_name,
        )
    )


def _node_group(raw: Mapping[str, Any]) -> EksNodeGroup:
    scaling = raw.get("scalingConfig") or {}
    resources = raw.get("resources") or {}
    return EksNodeGroup(
        cluster_name=raw.get("clusterName", ""),
        name=raw["nodegroupName"],
        status=raw.get("status", ""),
        capacity_type=raw.get("capacityType", "ON_DEMAND") or "ON_DEMAND",
        instance_types=tuple(raw.get("instanceTypes") or ()),
        min_size=int(scaling.get("minSize", 0)),
        max_size=int(scaling.get("maxSize", 0)),
        desired_size=int(scaling.get("desiredSize", 0)),
        autoscaling_groups=tuple(g["name"] for g in resources.get("autoScalingGroups") or ()),
        subnets=tuple(raw.get("subnets") or ()),
        labels=dict(raw.get("labels") or {}),
    )


def describe_node_group(session: AccountSession, *, cluster_name: str, name: str) -> EksNodeGroup:
    """One managed node group."""
    data = call(
        session.client("eks"), "describe_nodegroup", retry=session.retry, clusterName=cluster_name, nodegroupName=name
    )
    return _node_group(data["nodegroup"])


def describe_node_groups(session: AccountSession, *, cluster_name: str) -> list[EksNodeGroup]:
    """All managed node groups of a cluster."""
    return [
        describe_node_group(session, cluster_name=cluster_name, name=n)
        for n in list_node_groups(session, cluster_name=cluster_name)
    ]


def update_node_group_scaling(
    session: AccountSession,
    *,
    cluster_name: str,
    name: str,
    desired_size: int,
    min_size: int | None = None,
    max_size: int | None = None,
) -> str:
    """Change a node group's scaling; returns the EKS update id."""
    scaling: dict[str, int] = {"desiredSize": desired_size}
    if min_size is not None:
        scaling["minSize"] = min_size
    if max_size is not None:
        scaling["maxSize"] = max_size
    data = call(
        session.client("eks"),
        "update_nodegroup_config",
        retry=session.retry,
        clusterName=cluster_name,
        nodegroupName=name,
        scalingConfig=scaling,
    )
    return str(data.get("update", {}).get("id", ""))


def resize_node_group(
    session: AccountSession, *, cluster_name: str, name: str, min_size: int, max_size: int, desired_size: int
) -> NodeGroupResize:
    """Set a managed node group's min, max and desired size (``UpdateNodegroupConfig``); returns what it was and
    what was asked. EKS refuses a max below 1, so scaling to zero keeps the max."""
    current = describe_node_group(session, cluster_name=cluster_name, name=name)
    before = GroupSize(current.min_size, current.max_size, current.desired_size)
    after = GroupSize(min_size, max(1, max_size), desired_size)
    if after == before:
        return NodeGroupResize(cluster_name, name, "", before, after)
    update_id = update_node_group_scaling(
        session,
        cluster_name=cluster_name,
        name=name,
        desired_size=after.desired,
        min_size=after.min_size,
        max_size=after.max_size,
    )
    return NodeGroupResize(cluster_name, name, update_id, before, after)
