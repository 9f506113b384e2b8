"""``manage.py sync_accounts [--account ID]``: discovery and inventory, synchronously."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import CloudAccount
from accounts.selectors import enabled_accounts
from clusters import services


class Command(BaseCommand):
    help = "Discover clusters and sync instance inventory of active linked accounts (or one account)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", type=int, help="Only this account id (it must be active).")
        parser.add_argument("--skip-inventory", action="store_true", help="Discovery only.")

    def handle(self, *args, account: int | None = None, skip_inventory: bool = False, **options) -> None:
        self._stop = False
        signal.signal(signal.SIGTERM, self._on_sigterm)
        if account is not None:
            found = CloudAccount.objects.filter(pk=account).first()
            if found is None:
                raise CommandError(f"No account with id {account}.")
            if not found.is_enabled:
                raise CommandError(f"Account {account} is {found.status}; validate it first.")
            accounts = [found]
        else:
            accounts = list(enabled_accounts())
        failures = 0
        for item in accounts:
            if self._stop:
                self.stdout.write("Stopping on SIGTERM.")
                break
            report = services.account_sync(account=item, inventory=not skip_inventory)
            d, i = report.discovery, report.inventory
            line = (
                f"{item.pk} {item.name}: {len(d.found) if d else 0} clusters "
                f"({len(d.created) if d else 0} new, {len(d.missing) if d else 0} missing)"
            )
            if i is not None:
                line += f"; instances +{i.added} ~{i.updated} -{i.closed}"
            if report.errors:
                failures += 1
                line += f"; errors: {report.errors}"
                self.stdout.write(self.style.WARNING(line))
            else:
                self.stdout.write(self.style.SUCCESS(line))
        if failures:
            self.stdout.write(self.style.WARNING(f"{failures} account(s) had errors."))

    def _on_sigterm(self, signum, frame) -> None:
        self._stop = True
