"""``manage.py record_costs``: write this hour's cost rows and roll-ups once (beat runs the same service hourly)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from savings.services import record_costs


class Command(BaseCommand):
    help = "Record every cluster's cost for the current hour (idempotent within the hour), roll up, prune."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="Print nothing.")

    def handle(self, *args, quiet: bool = False, **options) -> None:
        report = record_costs()
        if not quiet:
            self.stdout.write(
                f"recorded {report.clusters} cluster(s), {report.instances} running instance(s) "
                f"for {report.hour:%Y-%m-%dT%H:%MZ}; pruned {report.pruned} old hourly row(s)"
            )
