from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Organization, User

DEMO_EMAIL = "demo@spotoptimizer.com"
DEMO_PASSWORD = "demo-password-1"


class Command(BaseCommand):
    help = "Create the demo organization and user (idempotent). For development and demos only."

    def handle(self, *args, **options):
        with transaction.atomic():
            user = User.objects.filter(email=DEMO_EMAIL).first()
            if user is None:
                org = Organization.objects.create(name="Demo Org")
                user = User.objects.create_user(
                    email=DEMO_EMAIL, password=DEMO_PASSWORD, full_name="Demo Operator", organization=org
                )
                org.owner = user
                org.save(update_fields=["owner"])
                self.stdout.write(f"Created {DEMO_EMAIL} in {org.name}.")
            else:
                self.stdout.write(f"{DEMO_EMAIL} already exists.")
