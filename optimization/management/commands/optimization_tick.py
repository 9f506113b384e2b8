import json
import signal

from django.core.management.base import BaseCommand

from optimization.services.runner import tick


class Command(BaseCommand):
    help = (
        "Run one optimization tick now: start due automatic and fallback-restore jobs, and advance every active job "
        "as far as it can go (the beat task runs the same every minute). Plans are queued for the worker unless "
        "--in-line is given or tasks run eagerly."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500, help="at most this many jobs advanced")
        parser.add_argument(
            "--in-line",
            action="store_true",
            help="plan due clusters, restores and validations here instead of queueing them for the worker",
        )

    def handle(self, *args, limit: int, in_line: bool, **options):
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop between moves, each move is a transaction
        report = tick(limit=limit, in_line=True if in_line else None)
        self.stdout.write(json.dumps(report.as_dict(), sort_keys=True))
