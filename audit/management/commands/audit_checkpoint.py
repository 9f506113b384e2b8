"""``manage.py audit_checkpoint``: sign and store the head of every audit chain that moved since its last checkpoint."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.services import CheckpointOutcome, checkpoint_create_all


class Command(BaseCommand):
    help = (
        "Write a signed checkpoint (seq, hash, HMAC-SHA256 under AUDIT_SIGNING_KEY) of each audit chain whose head "
        "moved since its last checkpoint, after verifying the entries since then. Each checkpoint is stored and logged "
        "as a JSON line (logger audit.checkpoint), the copy that verify_audit --checkpoints reads back. Celery beat "
        "runs this hourly. Exits non-zero when a chain does not verify (that chain is left unsigned)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self._stopping = False
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, self._on_sigterm) if in_main else None
        try:
            outcomes = checkpoint_create_all(should_stop=lambda: self._stopping)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        broken = [o for o in outcomes if o.status == CheckpointOutcome.BROKEN]
        for outcome in outcomes:
            (self.stderr if outcome in broken else self.stdout).write(outcome.describe())
        written = sum(1 for o in outcomes if o.status == CheckpointOutcome.WRITTEN)
        if broken:
            raise CommandError(f"{len(broken)} audit chain(s) do not verify and were not checkpointed")
        if self._stopping:
            raise CommandError(f"stopped after {len(outcomes)} chain(s); {written} checkpoint(s) written", returncode=2)
        self.stdout.write(self.style.SUCCESS(f"{written} checkpoint(s) written, {len(outcomes)} chain(s) looked at."))

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        # Finish the chain in hand, then stop: a checkpoint is either fully written and logged or not at all.
        self._stopping = True
