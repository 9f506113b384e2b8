"""EC2: regions, instances, instance types and offerings, spot prices, launching and terminating."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cloud.session import CAPACITY_CODES, AccountSession, call, paginate
from cloud.types import (
    CLUSTER_TAG_PREFIX,
    Ec2Instance,
    FleetError,
    InstanceTypeInfo,
    InstanceTypeOffering,
    LaunchOverride,
    LaunchResult,
    Lifecycle,
    Region,
    SpotPrice,
    TerminationChange,
)

#: EC2 accepts at most this many instance ids / filter values per call.
_ID_BATCH = 200


def _utc(value: datetime | None) -> datetime | None:
    """boto3 returns aware datetimes, sometimes in the local zone; the product stores UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _tags(raw: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in raw or ()}


def _tag_spec(resource_type: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
    if not tags:
        return []
    return [{"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def _chunks(items: Sequence[str], size: int = _ID_BATCH) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- regions -----------------------------------------------------------------------------------------------------


def describe_regions(session: AccountSession, *, all_regions: bool = False) -> list[Region]:
    """Regions of the account (only enabled ones unless ``all_regions``)."""
    data = call(session.client("ec2"), "describe_regions", retry=session.retry, AllRegions=all_regions)
    regions = [
        Region(name=r["RegionName"], opt_in_status=r.get("OptInStatus", "opt-in-not-required")) for r in data["Regions"]
    ]
    return sorted(regions, key=lambda r: r.name)


# -- instances ---------------------------------------------------------------------------------------------------


def _instance(raw: Mapping[str, Any]) -> Ec2Instance:
    lifecycle: Lifecycle = "spot" if raw.get("InstanceLifecycle") == "spot" else "on-demand"
    return Ec2Instance(
        instance_id=raw["InstanceId"],
        instance_type=raw.get("InstanceType", ""),
        zone=raw.get("Placement", {}).get("AvailabilityZone", ""),
        lifecycle=lifecycle,
        state=raw.get("State", {}).get("Name", ""),
        launch_time=_utc(raw.get("LaunchTime")),
        private_dns_name=raw.get("PrivateDnsName", "") or "",
        private_ip=raw.get("PrivateIpAddress", "") or "",
        image_id=raw.get("ImageId", "") or "",
        subnet_id=raw.get("SubnetId", "") or "",
        vpc_id=raw.get("VpcId", "") or "",
        architecture=raw.get("Architecture", "") or "",
        spot_instance_request_id=raw.get("SpotInstanceRequestId", "") or "",
        tags=_tags(raw.get("Tags")),
    )


def describe_instances(
    session: AccountSession,
    *,
    instance_ids: Sequence[str] = (),
    filters: Mapping[str, Sequence[str]] | None = None,
    page_size: int = 500,
) -> list[Ec2Instance]:
    """Instances matching ``filters`` (EC2 filter name -> values) and/or ids, across all pages."""
    client = session.client("ec2")
    params: dict[str, Any] = {}
    if filters:
        params["Filters"] = [{"Name": k, "Values": list(v)} for k, v in filters.items()]
    out: list[Ec2Instance] = []
    id_batches: Iterable[Sequence[str] | None] = _chunks(list(instance_ids)) if instance_ids else [None]
    for ids in id_batches:
        page_params = dict(params)
        if ids is not None:
            page_params["InstanceIds"] = list(ids)
        else:
            page_params["MaxResults"] = page_size
        for reservation in paginate(
            client, "describe_instances", result_key="Reservations", retry=session.retry, **page_params
        ):
            out.extend(_instance(raw) for raw in reservation.get("Instances", []))
    return out


def describe_cluster_instances(
    session: AccountSession, *, cluster_name: str | None = None, include_terminated: bool = False
) -> list[Ec2Instance]:
    """Instances tagged ``kubernetes.io/cluster/<name>`` (any cluster when ``cluster_name`` is None)."""
    filters: dict[str, list[str]] = {}
    if cluster_name:
        filters["tag-key"] = [f"{CLUSTER_TAG_PREFIX}{cluster_name}"]
    else:
        # EC2 filter values accept "*" wildcards.
        filters["tag-key"] = [f"{CLUSTER_TAG_PREFIX}*"]
    if not include_terminated:
        filters["instance-state-name"] = ["pending", "running", "stopping", "stopped", "shutting-down"]
    return describe_instances(session, filters=filters)


def terminate_instances(session: AccountSession, *, instance_ids: Sequence[str]) -> list[TerminationChange]:
    """Terminate the given instances (in batches)."""
    changes: list[TerminationChange] = []
    for ids in _chunks(list(instance_ids)):
        data = call(session.client("ec2"), "terminate_instances", retry=session.retry, InstanceIds=list(ids))
        changes.extend(
            TerminationChange(
                instance_id=c["InstanceId"],
                previous_state=c.get("PreviousState", {}).get("Name", ""),
                current_state=c.get("CurrentState", {}).get("Name", ""),
            )
            for c in data.get("TerminatingInstances", [])
        )
    return changes


def create_tags(session: AccountSession, *, resource_ids: Sequence[str], tags: Mapping[str, str]) -> None:
    """Add or overwrite tags on EC2 resources."""
    if not resource_ids or not tags:
        return
    for ids in _chunks(list(resource_ids)):
        call(
            session.client("ec2"),
            "create_tags",
            retry=session.retry,
            Resources=list(ids),
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )


def run_instances(
    session: AccountSession,
    *,
    instance_type: str,
    count: int = 1,
    image_id: str = "",
    launch_template_id: str = "",
    launch_template_version: str = "$Latest",
    subnet_id: str = "",
    zone: str = "",
    spot: bool = False,
    max_price: Decimal | None = None,
    tags: Mapping[str, str] | None = None,
    user_data: str = "",
) -> LaunchResult:
    """Launch ``count`` identical instances (all or nothing: EC2's MinCount = MaxCount)."""
    params: dict[str, Any] = {"InstanceType": instance_type, "MinCount": count, "MaxCount": count}
    if image_id:
        params["ImageId"] = image_id
    if launch_template_id:
        params["LaunchTemplate"] = {"LaunchTemplateId": launch_template_id, "Version": launch_template_version}
    if subnet_id:
        params["SubnetId"] = subnet_id
    if zone:
        params["Placement"] = {"AvailabilityZone": zone}
    if spot:
        options: dict[str, Any] = {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}
        if max_price is not None:
            options["MaxPrice"] = str(max_price)
        params["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": options}
    if tags:
        params["TagSpecifications"] = _tag_spec("instance", tags)
    if user_data:
        params["UserData"] = user_data
    data = call(session.client("ec2"), "run_instances", retry=session.retry, **params)
    return LaunchResult(instance_ids=tuple(i["InstanceId"] for i in data.get("Instances", [])))


def create_fleet(
    session: AccountSession,
    *,
    launch_template_id: str,
    overrides: Sequence[LaunchOverride],
    target_capacity: int,
    capacity_type: Lifecycle = "spot",
    launch_template_version: str = "$Latest",
    spot_allocation_strategy: str = "price-capacity-optimized",
    tags: Mapping[str, str] | None = None,
    client_token: str = "",
) -> LaunchResult:
    """An ``instant`` EC2 Fleet: launch up to ``target_capacity`` instances from the given (type, zone) overrides.

    Partial fulfilment is normal for spot: the result lists what launched and why the rest did not.
    """
    override_specs: list[dict[str, Any]] = []
    for o in overrides:
        spec: dict[str, Any] = {"InstanceType": o.instance_type}
        if o.subnet_id:
            spec["SubnetId"] = o.subnet_id
        elif o.zone:
            spec["AvailabilityZone"] = o.zone
        if o.priority is not None:
            spec["Priority"] = o.priority
        if o.max_price is not None:
            spec["MaxPrice"] = str(o.max_price)
        override_specs.append(spec)
    ec2_capacity_type = "spot" if capacity_type == "spot" else "on-demand"
    params: dict[str, Any] = {
        "Type": "instant",
        "LaunchTemplateConfigs": [
            {
                "LaunchTemplateSpecification": {
                    "LaunchTemplateId": launch_template_id,
                    "Version": launch_template_version,
                },
                "Overrides": override_specs,
            }
        ],
        "TargetCapacitySpecification": {
            "TotalTargetCapacity": target_capacity,
            "DefaultTargetCapacityType": ec2_capacity_type,
            "SpotTargetCapacity": target_capacity if capacity_type == "spot" else 0,
            "OnDemandTargetCapacity": target_capacity if capacity_type != "spot" else 0,
        },
        "SpotOptions": {"AllocationStrategy": spot_allocation_strategy},
        "OnDemandOptions": {"AllocationStrategy": "lowest-price"},
    }
    if tags:
        params["TagSpecifications"] = _tag_spec("instance", tags)
    if client_token:
        # Idempotency: a retry with the same token returns the first request's fleet instead of launching again.
        params["ClientToken"] = client_token
    data = call(session.client("ec2"), "create_fleet", retry=session.retry, **params)
    ids: list[str] = []
    for group in data.get("Instances", []):
        ids.extend(group.get("InstanceIds", []))
    fleet_errors = tuple(
        FleetError(
            code=e.get("ErrorCode", ""),
            message=e.get("ErrorMessage", ""),
            instance_type=e.get("LaunchTemplateAndOverrides", {}).get("Overrides", {}).get("InstanceType", ""),
            zone=e.get("LaunchTemplateAndOverrides", {}).get("Overrides", {}).get("AvailabilityZone", ""),
            lifecycle=e.get("Lifecycle", ""),
        )
        for e in data.get("Errors", [])
    )
    return LaunchResult(instance_ids=tuple(ids), errors=fleet_errors, fleet_id=data.get("FleetId", ""))


def is_capacity_error(code: str) -> bool:
    """Whether an EC2 error code (a call's or a fleet's ``Errors`` entry) means the pool lacks capacity."""
    return code in CAPACITY_CODES


def describe_subnets(session: AccountSession, *, subnet_ids: Sequence[str]) -> dict[str, str]:
    """Subnet id -> its availability zone."""
    if not subnet_ids:
        return {}
    data = call(session.client("ec2"), "describe_subnets", retry=session.retry, SubnetIds=list(subnet_ids))
    return {s["SubnetId"]: s.get("AvailabilityZone", "") for s in data.get("Subnets", [])}


# -- instance types and offerings --------------------------------------------------------------------------------


def _instance_type(raw: Mapping[str, Any]) -> InstanceTypeInfo:
    archs = raw.get("ProcessorInfo", {}).get("SupportedArchitectures", []) or []
    arch = "arm64" if any(a.startswith("arm64") for a in archs) else "x86_64"
    gpus = sum(int(g.get("Count", 0)) for g in raw.get("GpuInfo", {}).get("Gpus", []) or [])
    network = raw.get("NetworkInfo", {}) or {}
    return InstanceTypeInfo(
        instance_type=raw["InstanceType"],
        vcpu=int(raw.get("VCpuInfo", {}).get("DefaultVCpus", 0)),
        memory_mib=int(raw.get("MemoryInfo", {}).get("SizeInMiB", 0)),
        arch=arch,
        gpus=gpus,
        burstable=bool(raw.get("BurstablePerformanceSupported", False)),
        bare_metal=bool(raw.get("BareMetal", False)),
        current_generation=bool(raw.get("CurrentGeneration", True)),
        spot_supported="spot" in (raw.get("SupportedUsageClasses") or ["spot"]),
        max_network_interfaces=int(network.get("MaximumNetworkInterfaces", 0) or 0),
        ipv4_addresses_per_interface=int(network.get("Ipv4AddressesPerInterface", 0) or 0),
    )


def describe_instance_types(session: AccountSession, *, instance_types: Sequence[str] = ()) -> list[InstanceTypeInfo]:
    """Capabilities of the given instance types (all types when empty)."""
    params: dict[str, Any] = {}
    if instance_types:
        params["InstanceTypes"] = list(instance_types)
    raw = paginate(
        session.client("ec2"), "describe_instance_types", result_key="InstanceTypes", retry=session.retry, **params
    )
    return [_instance_type(r) for r in raw]


def describe_instance_type_offerings(
    session: AccountSession,
    *,
    location_type: str = "availability-zone",
    instance_types: Sequence[str] = (),
) -> list[InstanceTypeOffering]:
    """Which instance types are offered in the session's region, per zone (or per region / zone id)."""
    params: dict[str, Any] = {"LocationType": location_type}
    if instance_types:
        params["Filters"] = [{"Name": "instance-type", "Values": list(instance_types)}]
    raw = paginate(
        session.client("ec2"),
        "describe_instance_type_offerings",
        result_key="InstanceTypeOfferings",
        retry=session.retry,
        **params,
    )
    return [
        InstanceTypeOffering(instance_type=o["InstanceType"], location=o["Location"], location_type=o["LocationType"])
        for o in raw
    ]


# -- spot prices -------------------------------------------------------------------------------------------------


def describe_spot_price_history(
    session: AccountSession,
    *,
    instance_types: Sequence[str] = (),
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    product_descriptions: Sequence[str] = ("Linux/UNIX",),
    zone: str = "",
) -> list[SpotPrice]:
    """Spot price records for the session's region.

    ``product_descriptions`` is applied on our side (not as an AWS filter): "Linux/UNIX" also matches
    "Linux/UNIX (Amazon VPC)", and moto answers a product-description filter with nothing.
    """
    params: dict[str, Any] = {}
    if instance_types:
        params["InstanceTypes"] = list(instance_types)
    if start_time:
        params["StartTime"] = start_time
    if end_time:
        params["EndTime"] = end_time
    if zone:
        params["AvailabilityZone"] = zone
    raw = paginate(
        session.client("ec2"),
        "describe_spot_price_history",
        result_key="SpotPriceHistory",
        retry=session.retry,
        **params,
    )
    out: list[SpotPrice] = []
    for r in raw:
        description = r.get("ProductDescription", "")
        if product_descriptions and not any(description.startswith(p) for p in product_descriptions):
            continue
        out.append(
            SpotPrice(
                instance_type=r["InstanceType"],
                zone=r["AvailabilityZone"],
                price=Decimal(r["SpotPrice"]),
                timestamp=_utc(r["Timestamp"]) or r["Timestamp"],
                product_description=description,
            )
        )
    return out


def describe_availability_zones(session: AccountSession) -> dict[str, str]:
    """Zone name -> zone id for the session's region."""
    data = call(session.client("ec2"), "describe_availability_zones", retry=session.retry)
    return {z["ZoneName"]: z.get("ZoneId", "") for z in data.get("AvailabilityZones", [])}
