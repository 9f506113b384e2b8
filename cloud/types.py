"""Plain, frozen data returned by the ``cloud`` functions (never raw boto3 dicts)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

Lifecycle = Literal["spot", "on-demand"]

#: Tag prefix that the Kubernetes AWS cloud provider (and kOps, kubeadm setups, Karpenter) put on cluster instances.
CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"


@dataclass(frozen=True)
class CallerIdentity:
    """The result of ``sts:GetCallerIdentity``."""

    account_id: str
    arn: str
    user_id: str


@dataclass(frozen=True)
class TemporaryCredentials:
    """Credentials returned by ``sts:AssumeRole``."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime | None = None


@dataclass(frozen=True)
class Region:
    """An EC2 region and whether the account has it enabled."""

    name: str
    opt_in_status: str = "opt-in-not-required"

    @property
    def enabled(self) -> bool:
        return self.opt_in_status in ("opt-in-not-required", "opted-in")


@dataclass(frozen=True)
class Ec2Instance:
    """An EC2 instance as the inventory needs it."""

    instance_id: str
    instance_type: str
    zone: str
    lifecycle: Lifecycle
    state: str
    launch_time: datetime | None
    private_dns_name: str = ""
    private_ip: str = ""
    image_id: str = ""
    subnet_id: str = ""
    vpc_id: str = ""
    architecture: str = ""
    spot_instance_request_id: str = ""
    tags: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def asg_name(self) -> str:
        return self.tags.get("aws:autoscaling:groupName", "")

    @property
    def node_group(self) -> str:
        return self.tags.get("eks:nodegroup-name", "")

    @property
    def cluster_names(self) -> tuple[str, ...]:
        """Kubernetes clusters this instance says it belongs to (by tag)."""
        names = {k[len(CLUSTER_TAG_PREFIX) :] for k in self.tags if k.startswith(CLUSTER_TAG_PREFIX)}
        for key in ("eks:cluster-name", "aws:eks:cluster-name"):
            if self.tags.get(key):
                names.add(self.tags[key])
        return tuple(sorted(n for n in names if n))


@dataclass(frozen=True)
class InstanceTypeInfo:
    """Capabilities of an instance type (``DescribeInstanceTypes``)."""

    instance_type: str
    vcpu: int
    memory_mib: int
    arch: str  # "x86_64" or "arm64"
    gpus: int = 0
    burstable: bool = False
    bare_metal: bool = False
    current_generation: bool = True
    spot_supported: bool = True
    max_network_interfaces: int = 0
    ipv4_addresses_per_interface: int = 0

    @property
    def family(self) -> str:
        return self.instance_type.split(".", 1)[0]

    @property
    def max_pods(self) -> int:
        """Pods per node as the EKS VPC CNI computes them: ENIs * (IPv4 per ENI - 1) + 2."""
        return eni_max_pods(self.max_network_interfaces, self.ipv4_addresses_per_interface)


def eni_max_pods(max_network_interfaces: int, ipv4_addresses_per_interface: int) -> int:
    """EKS's ENI-based max pods formula; 0 when the network limits are unknown."""
    if max_network_interfaces <= 0 or ipv4_addresses_per_interface <= 0:
        return 0
    return max_network_interfaces * (ipv4_addresses_per_interface - 1) + 2


@dataclass(frozen=True)
class InstanceTypeOffering:
    """An instance type offered in a region, zone or zone id."""

    instance_type: str
    location: str
    location_type: str


@dataclass(frozen=True)
class SpotPrice:
    """One ``DescribeSpotPriceHistory`` record."""

    instance_type: str
    zone: str
    price: Decimal
    timestamp: datetime
    product_description: str = "Linux/UNIX"


@dataclass(frozen=True)
class FleetError:
    """Why part of a fleet request could not be fulfilled."""

    code: str
    message: str
    instance_type: str = ""
    zone: str = ""
    lifecycle: str = ""


@dataclass(frozen=True)
class LaunchResult:
    """Instances launched by ``create_fleet`` / ``run_instances`` and the errors for the rest."""

    instance_ids: tuple[str, ...]
    errors: tuple[FleetError, ...] = ()
    fleet_id: str = ""


@dataclass(frozen=True)
class LaunchOverride:
    """One (instance type, zone or subnet) choice of a fleet request."""

    instance_type: str
    zone: str = ""
    subnet_id: str = ""
    priority: float | None = None
    max_price: Decimal | None = None


@dataclass(frozen=True)
class EksCluster:
    """An EKS cluster (``DescribeCluster``)."""

    name: str
    arn: str
    status: str
    version: str
    endpoint: str = ""
    vpc_id: str = ""
    created_at: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class EksNodeGroup:
    """An EKS managed node group (``DescribeNodegroup``)."""

    cluster_name: str
    name: str
    status: str
    capacity_type: str  # "ON_DEMAND" or "SPOT"
    instance_types: tuple[str, ...]
    min_size: int
    max_size: int
    desired_size: int
    autoscaling_groups: tuple[str, ...] = ()
    subnets: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class AutoScalingGroup:
    """An Auto Scaling group (``DescribeAutoScalingGroups``)."""

    name: str
    min_size: int
    max_size: int
    desired_capacity: int
    instance_ids: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    launch_template_id: str = ""
    launch_template_name: str = ""
    tags: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    subnet_ids: tuple[str, ...] = ()
    launch_template_version: str = ""


@dataclass(frozen=True)
class TerminationChange:
    """The state change reported by ``TerminateInstances``."""

    instance_id: str
    previous_state: str
    current_state: str


@dataclass(frozen=True)
class GroupSize:
    """The min, max and desired size of a node group or Auto Scaling group."""

    min_size: int
    max_size: int
    desired: int


@dataclass(frozen=True)
class NodeGroupResize:
    """An ``UpdateNodegroupConfig`` made: the sizes before and the ones asked for, and the EKS update id."""

    cluster_name: str
    name: str
    update_id: str
    before: GroupSize
    after: GroupSize


@dataclass(frozen=True)
class AutoScalingGroupResize:
    """An ``UpdateAutoScalingGroup`` made: the sizes before and after."""

    name: str
    before: GroupSize
    after: GroupSize
