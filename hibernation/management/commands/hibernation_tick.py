"""``manage.py hibernation_tick``: one tick of the hibernation state machine over every schedule (beat runs the same
service every minute)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from hibernation.services.engine import hibernation_tick


class Command(BaseCommand):
    help = "Evaluate every hibernation schedule once and advance the clusters that must sleep or wake."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="Print nothing unless something failed.")

    def handle(self, *args, quiet: bool = False, **options) -> None:
        report = hibernation_tick()
        if not quiet or report.errors:
            self.stdout.write(
                f"evaluated {report.evaluated} schedule(s), advanced {report.attended} "
                f"({report.steps} step(s), {report.skipped_locked} held by another tick)"
            )
        for pk, message in sorted(report.errors.items()):
            self.stderr.write(f"schedule {pk}: {message}")
