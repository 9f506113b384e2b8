"""``manage.py reconcile_savings``: does the ledger explain the cost history over a window?"""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.models import Organization
from savings.selectors import reconciliation


class Command(BaseCommand):
    help = "Reconcile an organization's savings ledger with its cost history over the last N days (JSON out)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", type=int, required=True, help="Organization id.")
        parser.add_argument("--days", type=int, default=7, help="Window length in days, ending now.")

    def handle(self, *args, organization: int, days: int, **options) -> None:
        org = Organization.objects.filter(pk=organization).first()
        if org is None:
            raise CommandError(f"No organization {organization}.")
        if days < 1:
            raise CommandError("--days must be at least 1.")
        until = timezone.now()
        # The selectors scope by a caller; this one sees exactly the organization's rows.
        viewer = SimpleNamespace(is_authenticated=True, is_super_admin=False, organization_id=org.pk)
        result = reconciliation(viewer, since=until - timedelta(days=days), until=until)
        self.stdout.write(json.dumps(result, indent=2))
