from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from accounts.services import user_signup
from templates_app.models import NodeTemplate
from templates_app.services import template_create

DEMO_EMAIL = "demo@spotoptimizer.com"
DEMO_PASSWORD = "demo-password-1"


class Command(BaseCommand):
    help = "Create the demo organization and user (idempotent). For development and demos only."

    def handle(self, *args, **options):
        with transaction.atomic():
            user = User.objects.filter(email=DEMO_EMAIL).first()
            if user is None:
                user = user_signup(
                    email=DEMO_EMAIL, password=DEMO_PASSWORD, organization_name="Demo Org", full_name="Demo Operator"
                )
                self.stdout.write(f"Created {DEMO_EMAIL} in {user.organization.name}.")
            else:
                self.stdout.write(f"{DEMO_EMAIL} already exists.")
            if not NodeTemplate.objects.filter(organization=user.organization).exists():
                # A default template, so that the preview and the optimizer work on the demo clusters at once.
                template_create(
                    organization=user.organization,
                    data={
                        "name": "general-purpose",
                        "description": "Current-generation general purpose and compute nodes, spot first.",
                        "architectures": ["x86_64", "arm64"],
                        "instance_families": {"include": ["m*", "c*", "r*"], "exclude": []},
                        "min_vcpu": 2,
                        "max_vcpu": 16,
                        "capacity_types": ["spot", "on-demand"],
                        "strategy": "price-capacity-optimized",
                    },
                    actor="system:seed_demo",
                )
                self.stdout.write("Created the default node template general-purpose.")
