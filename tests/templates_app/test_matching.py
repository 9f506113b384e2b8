"""The matching service: template → instance types → offerings with prices and allocatable sizes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from templates_app.models import NodeTemplate
from templates_app.services import matching
from tests.factories import NodeTemplateFactory

from .conftest import REGION


def _template(**fields) -> NodeTemplate:
    """An unsaved template with the model's defaults, overridden by ``fields``."""
    return NodeTemplate(name="t", **fields)


def _names(template, rows=None) -> set[str]:
    from pricing.models import InstanceType

    rows = rows if rows is not None else list(InstanceType.objects.all())
    return {row.name for row in matching.matching_types(template, rows)}


# --- Type criteria (pure, against the small catalog's rows) -----------------------------------------------------


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        (["m*"], [], {"m5.large", "m5.xlarge"}),  # m7g is arm64, m4 old, mac1 bare metal: excluded by the defaults
        (["c7*"], [], {"c7i.xlarge"}),
        (["m5", "c7?"], [], {"m5.large", "m5.xlarge", "c7i.xlarge"}),
        ([], ["m*", "c*"], {"t3.medium"}),
        (["m*"], ["m5"], set()),
    ],
)
def test_wildcard_families(catalog, include, exclude, expected):
    template = _template(instance_families={"include": include, "exclude": exclude})
    assert _names(template) == expected


def test_no_include_means_every_family(catalog):
    assert _names(_template()) == {"m5.large", "m5.xlarge", "c7i.xlarge", "t3.medium"}


def test_architectures(catalog):
    assert _names(_template(architectures=["arm64"])) == {"m7g.large"}
    both = _names(_template(architectures=["x86_64", "arm64"], instance_families={"include": ["m*"]}))
    assert both == {"m5.large", "m5.xlarge", "m7g.large"}


def test_gpu_exclude_allow_require(catalog):
    assert "g5.xlarge" not in _names(_template(gpu="exclude"))
    assert "g5.xlarge" in _names(_template(gpu="allow"))
    assert _names(_template(gpu="require")) == {"g5.xlarge"}


def test_current_generation_only(catalog):
    assert "m4.large" not in _names(_template(current_generation_only=True))
    assert "m4.large" in _names(_template(current_generation_only=False))


def test_exclude_burstable(catalog):
    assert "t3.medium" in _names(_template(exclude_burstable=False))
    assert "t3.medium" not in _names(_template(exclude_burstable=True))


def test_exclude_bare_metal(catalog):
    assert "c7i.metal-24xl" not in _names(_template(exclude_bare_metal=True))
    assert "c7i.metal-24xl" in _names(_template(exclude_bare_metal=False))


def test_vcpu_and_memory_ranges(catalog):
    assert _names(_template(min_vcpu=4, max_vcpu=4)) == {"m5.xlarge", "c7i.xlarge"}
    assert _names(_template(min_memory_gib=Decimal("16"))) == {"m5.xlarge"}
    assert _names(_template(max_memory_gib=Decimal("4"))) == {"t3.medium"}


# --- Node sizing ----------------------------------------------------------------------------------------------


def test_max_pods_from_enis_capped_as_eks():
    class Row:
        max_pods = 0
        vcpu = 2
        max_network_interfaces = 3
        ipv4_addresses_per_interface = 10

    assert matching.max_pods_for(Row()) == 29  # m5.large: 3 * (10 - 1) + 2
    Row.vcpu, Row.max_network_interfaces, Row.ipv4_addresses_per_interface = 96, 15, 50
    assert matching.max_pods_for(Row()) == 250  # 737 by ENIs, capped at 250 above 30 vCPUs
    Row.vcpu = 16
    assert matching.max_pods_for(Row()) == 110


def test_max_pods_without_eni_limits():
    class Row:
        max_pods = 58
        vcpu = 4
        max_network_interfaces = 0
        ipv4_addresses_per_interface = 0

    assert matching.max_pods_for(Row()) == 58
    Row.max_pods = 0
    assert matching.max_pods_for(Row()) == 110


@pytest.mark.parametrize(
    ("vcpu", "reserved"),
    [(1, 60), (2, 70), (4, 80), (8, 90), (96, 310)],  # 60 + 10 + 2*5 + (n-4)*2.5
)
def test_kube_reserved_cpu(vcpu, reserved):
    assert matching.kube_reserved_cpu_m(vcpu) == reserved
    assert matching.allocatable_cpu_m(vcpu) == vcpu * 1000 - reserved


def test_allocatable_memory_reserves_kubelet_and_eviction():
    # m5.large: 8192 MiB - (255 + 11 * 29) - 100 = 7518
    assert matching.allocatable_memory_mib(8192, 29) == 7518


# --- Offerings from the database ------------------------------------------------------------------------------


def test_eligible_offerings_prices_zones_and_capacity(catalog, django_assert_num_queries):
    template = NodeTemplateFactory(instance_families={"include": ["m5"], "exclude": []})
    # 1. instance types narrowed in SQL, 2. on-demand prices, 3. latest spot price per (type, zone)
    with django_assert_num_queries(3):
        offerings = matching.eligible_offerings(template, REGION)
    by_key = {(o.instance_type, o.zone, o.capacity_type): o for o in offerings}
    assert by_key[("m5.large", "us-east-1a", "spot")].price == Decimal("0.040000")  # latest, not the older 9.999
    assert by_key[("m5.large", "us-east-1b", "spot")].price == Decimal("0.048000")
    assert by_key[("m5.large", "us-east-1a", "on-demand")].price == Decimal("0.096000")
    assert by_key[("m5.xlarge", "us-east-1a", "spot")].price == Decimal("0.080000")
    large = by_key[("m5.large", "us-east-1a", "spot")]
    assert (large.vcpu, large.memory_mib, large.max_pods, large.arch) == (2, 8192, 29, "x86_64")
    assert (large.allocatable_cpu_m, large.allocatable_memory_mib) == (1930, 7518)
    assert [o.price for o in offerings] == sorted(o.price for o in offerings)


def test_offerings_respect_capacity_types_zones_and_fallback(catalog):
    spot_only = NodeTemplateFactory(
        instance_families={"include": ["m5"]}, capacity_types=["spot"], zones=["us-east-1a"]
    )
    offerings = matching.eligible_offerings(spot_only, REGION)
    assert {(o.capacity_type, o.zone) for o in offerings} == {("spot", "us-east-1a")}
    with_fallback = matching.eligible_offerings(spot_only, REGION, include_fallback=True)
    assert {"on-demand"} < {o.capacity_type for o in with_fallback}
    on_demand_only = NodeTemplateFactory(instance_families={"include": ["m5"]}, capacity_types=["on-demand"])
    assert {o.capacity_type for o in matching.eligible_offerings(on_demand_only, REGION)} == {"on-demand"}


def test_offering_as_problem_matches_the_optimizer_contract(catalog):
    template = NodeTemplateFactory(instance_families={"include": ["m5"]})
    offerings = matching.eligible_offerings(template, REGION)
    spot = next(o for o in offerings if o.capacity_type == "spot").as_problem()
    assert spot == {
        "instance_type": "m5.large",
        "zone": "us-east-1a",
        "capacity_type": "spot",
        "price": "0.040000",
        "allocatable_cpu_m": 1930,
        "allocatable_memory_mib": 7518,
        "max_pods": 29,
        "arch": "x86_64",
        "interruption_rate": 0.175,  # Spot Advisor: m5.large in us-east-1 is in the 15-20% bucket (midpoint)
    }
    on_demand = next(o for o in offerings if o.capacity_type == "on-demand").as_problem()
    assert "interruption_rate" not in on_demand


def test_spot_interruption_rates_from_the_advisor_buckets():
    rates = matching.spot_interruption_rates("us-east-1")
    assert rates["m5.large"] == 0.175
    assert matching.interruption_bucket(rates["m5.large"]) == "15-20%"
    assert set(rates.values()) <= set(matching.ADVISOR_BUCKET_RATES)
    assert matching.spot_interruption_rates("nowhere-1") == {}


def test_region_without_prices_has_no_offerings(catalog):
    assert matching.eligible_offerings(NodeTemplateFactory(), "eu-west-1") == []


def test_preview_rows_from_the_small_catalog(catalog):
    template = NodeTemplateFactory(instance_families={"include": ["m5"]})
    preview = matching.preview(template, REGION)
    assert preview["count"] == 2
    large = preview["instance_types"][0]
    assert large["instance_type"] == "m5.large"
    assert large["on_demand_price"] == "0.096000"
    assert large["spot"] == [
        {"zone": "us-east-1a", "price": "0.040000", "savings_pct": 58.3},  # (0.096 - 0.040) / 0.096
        {"zone": "us-east-1b", "price": "0.048000", "savings_pct": 50.0},
    ]
    assert large["max_savings_pct"] == 58.3
