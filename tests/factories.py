"""factory_boy factories shared by the suite."""

from __future__ import annotations

import factory
from django.utils import timezone

from accounts.models import CloudAccount, Organization, User
from clusters.models import Cluster, Instance

DEFAULT_PASSWORD = "Sp0t-Optimizer-Pass!"


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    organization = factory.SubFactory(OrganizationFactory)
    role = User.Role.CLIENT
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class SuperAdminFactory(UserFactory):
    role = User.Role.SUPER_ADMIN
    organization = None
    is_staff = True
    is_superuser = True


class CloudAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CloudAccount

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"account-{n}")
    aws_account_id = factory.Sequence(lambda n: f"{100000000000 + n}")
    role_arn = factory.LazyAttribute(lambda o: f"arn:aws:iam::{o.aws_account_id}:role/SpotOptimizer")
    regions = factory.LazyFunction(lambda: ["us-east-1"])
    status = CloudAccount.Status.ACTIVE


class ClusterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cluster

    organization = factory.SubFactory(OrganizationFactory)
    cloud_account = None
    name = factory.Sequence(lambda n: f"cluster-{n}")
    region = "us-east-1"
    kind = Cluster.Kind.EKS


class InstanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Instance

    cluster = factory.SubFactory(ClusterFactory)
    instance_id = factory.Sequence(lambda n: f"i-{n:017x}")
    instance_type = "m5.large"
    zone = "us-east-1a"
    lifecycle = Instance.Lifecycle.ON_DEMAND
    state = "running"
    launch_time = factory.LazyFunction(timezone.now)
    private_dns = factory.Sequence(lambda n: f"ip-10-0-{n // 250}-{n % 250}.ec2.internal")


# --- Node templates and cluster policies ----------------------------------------------------------------------------


class NodeTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "templates_app.NodeTemplate"

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"template-{n}")
    architectures = factory.LazyFunction(lambda: ["x86_64"])
    capacity_types = factory.LazyFunction(lambda: ["spot", "on-demand"])
    instance_families = factory.LazyFunction(lambda: {"include": [], "exclude": []})
