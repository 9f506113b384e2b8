"""``manage.py poll_interruptions``: the interruption queue consumer (a process of its own, like the web and the
worker). ``--once`` drains every queue once and exits."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from interruptions.poller import Consumer


class Command(BaseCommand):
    help = (
        "Consume the interruption queue (EventBridge → SQS) of every enabled region of every linked account: store "
        "each event once, route it to its cluster and act on it. --once drains every queue once and exits."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Drain every queue once and exit.")
        parser.add_argument("--wait", type=int, default=None, help="Long-poll wait in seconds (0-20).")
        parser.add_argument("--threads", type=int, default=None, help="Queues drained at once with --once.")

    def handle(
        self, *args: Any, once: bool = False, wait: int | None = None, threads: int | None = None, **options: Any
    ):
        consumer = Consumer(wait_seconds=wait)
        if once:
            report = consumer.drain_all(threads=threads)
            self.stdout.write(
                f"received {report.received}, stored {report.stored}, duplicates {report.duplicates}, "
                f"unrouted {report.unrouted}, malformed {report.malformed}"
            )
            for error in report.errors:
                self.stderr.write(error)
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write("polling the interruption queues (Ctrl-C to stop)")
        consumer.run(stop)
        self.stdout.write("stopped")
