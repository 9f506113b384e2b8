"""The interruption queue consumer: long-polls the queue of every enabled region of every linked account, ten
messages at a time, stores and handles each event (:func:`interruptions.services.interruptions_ingest`), and only
then deletes the messages. The replacement jobs it starts are advanced at once (their launch is requested within
seconds, not at the next beat tick).

One thread per queue (at most ``INTERRUPTION_POLL_THREADS`` at once); the set of queues is looked at again every
minute, so a newly linked account is picked up without a restart."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import F
from django.utils import timezone

from accounts.aws import session_for, shared_sessions
from accounts.models import CloudAccount
from cloud import AccountSession, sqs
from cloud import errors as cloud_errors

from . import services
from .events import MalformedEvent, parse
from .models import QueueStatus

logger = logging.getLogger(__name__)
REFRESH_SECONDS = 60
RETRY_MISSING_SECONDS = 60
#: A replacement's launch request is tried this often by the consumer before it is left to the job runner's tick.
LAUNCH_TRIES = 3


@dataclass(frozen=True)
class QueueRef:
    account_id: int
    region: str

    def __str__(self) -> str:
        return f"account {self.account_id} / {self.region}"


@dataclass
class DrainReport:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    unrouted: int = 0
    malformed: int = 0
    jobs: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, other: DrainReport) -> None:
        for name in ("received", "stored", "duplicates", "unrouted", "malformed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.jobs += other.jobs
        self.pending += other.pending
        self.errors += other.errors


def queues() -> list[QueueRef]:
    """One queue per AWS account and enabled region: an AWS account linked by two organizations has one queue (read
    with the first link's role; routing by instance id finds each event's own organization). One query."""
    seen: set[tuple[str, str]] = set()
    out: list[QueueRef] = []
    accounts = CloudAccount.objects.exclude(status=CloudAccount.Status.DISABLED).order_by("id")
    for account in accounts.only("id", "aws_account_id", "regions", "role_arn", "encrypted_access_keys"):
        if not (account.role_arn or account.encrypted_access_keys):
            continue
        for region in account.regions or [settings.AWS_DEFAULT_REGION]:
            key = (account.aws_account_id or f"#{account.pk}", region)
            if key not in seen:
                seen.add(key)
                out.append(QueueRef(account.pk, region))
    return out


class Consumer:
    """Polls queues; ``advance`` starts the replacement jobs' launches (the job runner's ``advance_job``)."""

    def __init__(
        self,
        *,
        wait_seconds: int | None = None,
        advance: Callable[[int], object] | None = None,
        launch_threads: int = 16,
        complete_threads: int = 2,
    ) -> None:
        self.wait_seconds = settings.INTERRUPTION_WAIT_SECONDS if wait_seconds is None else wait_seconds
        # The launch requests (one move per pool): the job runner's follow-ups and tick carry the job on from there.
        self.advance = advance or services.request_launches
        self._sessions: dict[QueueRef, tuple[CloudAccount, AccountSession, str]] = {}
        self._missing_until: dict[QueueRef, float] = {}
        self._lock = threading.Lock()
        # Replacement launches run beside the intake (PostgreSQL; SQLite's single writer gains nothing from it).
        threaded = bool(launch_threads) and connection.vendor != "sqlite"
        self._launcher = (
            ThreadPoolExecutor(max_workers=launch_threads, thread_name_prefix="interruption-launch")
            if threaded
            else None
        )
        # Completing events is database work: a few threads, so that the intake keeps most of the CPU.
        self._completer = (
            ThreadPoolExecutor(max_workers=complete_threads, thread_name_prefix="interruption-complete")
            if threaded
            else None
        )
        self._pending: list = []
        self._waiting: list[int] = []
        self._status_rows: set[QueueRef] = set()

    # --- one queue ----------------------------------------------------------------------------------------------
    def _open(self, ref: QueueRef) -> tuple[CloudAccount, AccountSession, str] | None:
        with self._lock:
            cached = self._sessions.get(ref)
        if cached is not None:
            return cached
        if self._missing_until.get(ref, 0) > time.monotonic():
            return None
        account = CloudAccount.objects.select_related("organization").get(pk=ref.account_id)
        session = session_for(account, region=ref.region)
        try:
            url = sqs.queue_url(session, name=settings.INTERRUPTION_QUEUE_NAME)
        except cloud_errors.CloudError as exc:
            self._missing_until[ref] = time.monotonic() + RETRY_MISSING_SECONDS
            self._status(ref, error=f"{settings.INTERRUPTION_QUEUE_NAME} not reachable: {exc}")
            return None
        session.client("ec2")  # the client that launches replacements, built now rather than in a burst
        with self._lock:
            self._sessions[ref] = (account, session, url)
        self._status(ref, url=url)
        return account, session, url

    def _status(self, ref: QueueRef, *, url: str | None = None, error: str = "", report: DrainReport | None = None):
        if ref not in self._status_rows:  # once per queue and process; then one UPDATE per receive
            QueueStatus.objects.get_or_create(cloud_account_id=ref.account_id, region=ref.region)
            self._status_rows.add(ref)
        update: dict = {"last_polled_at": timezone.now(), "last_error": error[:2000]}
        if url is not None:
            update["queue_url"] = url
        if report is not None:
            update |= {
                name: F(name) + getattr(report, name)
                for name in ("received", "stored", "duplicates", "unrouted", "malformed")
            }
        QueueStatus.objects.filter(cloud_account_id=ref.account_id, region=ref.region).update(**update)

    def receive_once(self, ref: QueueRef, *, wait_seconds: int | None = None) -> DrainReport:
        """One receive (up to ten messages): store and handle them, then delete them. Returns what happened."""
        report = DrainReport()
        opened = self._open(ref)
        if opened is None:
            return report
        account, session, url = opened
        try:
            messages = sqs.receive(
                session, url=url, wait_seconds=self.wait_seconds if wait_seconds is None else wait_seconds
            )
        except cloud_errors.CloudError as exc:
            report.errors.append(str(exc))
            with self._lock:
                self._sessions.pop(ref, None)
            self._status(ref, error=str(exc))
            return report
        if not messages:
            return report
        report.received = len(messages)
        parsed = []
        for message in messages:
            try:
                parsed.extend(parse(message.body))
            except MalformedEvent as exc:
                report.malformed += 1
                logger.warning("interruption queue %s: message %s ignored: %s", ref, message.message_id, exc)
        # Stored, with each spot warning's cordon and drain queued, and committed: only now may the messages go.
        result = services.interruptions_store(account=account, events=parsed)
        report.stored = len(result.stored)
        report.duplicates = result.duplicates
        report.unrouted = result.unrouted
        report.pending = list(result.stored)
        try:
            failures = sqs.delete(session, url=url, messages=messages)
        except cloud_errors.CloudError as exc:
            failures = []
            report.errors.append(f"delete failed, the messages come back and are recognized: {exc}")
        for failure in failures:
            report.errors.append(f"delete of {failure.message_id} failed: {failure.code}")
        self._status(ref, report=report)
        return report

    def drain(self, ref: QueueRef) -> DrainReport:
        """Receive until the queue is empty (``--once``)."""
        total = DrainReport()
        while True:
            report = self.receive_once(ref, wait_seconds=0)
            total.add(report)
            self._complete(report.pending)
            if report.received == 0 or report.errors:
                return total

    def _submit(self, pool: ThreadPoolExecutor | None, fn: Callable, arg: object) -> None:
        assert pool is not None
        future = pool.submit(self._in_thread(fn), arg)
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(future)

    def _complete(self, interruption_ids: list[int]) -> None:
        """Finish handling (ICE, the replacement jobs) and request the replacement launches: on the completion threads
        when there are some, so that the intake goes on with the next messages, else here. Stored events wait in one
        list that a completion thread takes whole: a burst is completed in large batches (one replacement job per
        cluster for what arrived meanwhile), not ten events at a time."""
        if not interruption_ids:
            return
        if self._launcher is None:
            self._complete_now(interruption_ids)
            return
        with self._lock:
            self._waiting.extend(interruption_ids)
        self._submit(self._completer, self._complete_waiting, None)

    def _complete_waiting(self, _: object) -> None:
        with self._lock:
            ids, self._waiting = self._waiting, []
        if ids:
            self._complete_now(ids)

    def _complete_now(self, interruption_ids: list[int]) -> None:
        def launch(job_ids: list[int]) -> None:
            for job_id in job_ids:  # each job's launches on a thread of their own: they wait on AWS, not on each other
                if self._launcher is not None:
                    self._submit(self._launcher, self._advance_now, job_id)
                else:
                    self._advance_now(job_id)

        def failed(ids: list[int], exc: Exception) -> None:  # left unhandled: the pending sweep finishes them
            logger.error("handling interruptions %s failed", ids[:20], exc_info=exc)

        services.interruptions_complete(
            interruption_ids=interruption_ids, offerings={}, on_jobs=launch, on_error=failed
        )

    def _advance_now(self, job_id: int) -> None:
        """Request the job's launches; a failed request (AWS answering 500, a dropped connection) is tried again a few
        times within seconds rather than left to the runner's next tick: the two minutes run. Safe to repeat: the
        failed move rolled back, and a launch looks for the instances tagged with its step (and sends the same client
        token) before launching."""
        for attempt in range(1, LAUNCH_TRIES + 1):
            try:
                self.advance(job_id)
                return
            except Exception:
                logger.exception("requesting the launches of replacement job %s failed (try %s)", job_id, attempt)
            if attempt < LAUNCH_TRIES:
                time.sleep(attempt)
        # Out of tries: the job runner's tick advances it.

    def start_scheduled(self) -> int:
        """Start the replacements of scheduled changes whose lead time has come, and request their launches."""
        jobs = services.scheduled_replacements_due()
        for job_id in jobs:
            self._advance_now(job_id)
        return len(jobs)

    def finish_pending(self, *, older_than: timedelta = timedelta(seconds=30)) -> int:
        """Complete the events a crash left half-handled (stored, first response given, the rest not)."""
        pending = services.interruptions_pending(older_than=older_than)
        self._complete_now(pending)
        return len(pending)

    def wait_launches(self) -> None:
        """Wait until the work handed to the completion threads so far is done (``--once`` and the benchmark)."""
        while True:
            with self._lock:
                pending = [f for f in self._pending if not f.done()]
                self._pending = pending
            if not pending:
                return
            for future in pending:
                future.result()

    # --- every queue --------------------------------------------------------------------------------------------
    def prepare(self) -> int:
        """Open every queue now (role assumed, URL known), as a running consumer has them; returns how many."""
        return sum(1 for ref in queues() if self._open(ref) is not None)

    def drain_all(self, *, threads: int | None = None) -> DrainReport:
        """Drain every queue once; queues in parallel threads (one at a time on SQLite, whose writers queue anyway)."""
        with shared_sessions():
            return self._drain_all(threads=threads)

    def _drain_all(self, *, threads: int | None) -> DrainReport:
        refs = queues()
        total = DrainReport()
        threads = max(1, min(threads or settings.INTERRUPTION_POLL_THREADS, len(refs) or 1))
        if threads == 1 or connection.vendor == "sqlite":
            for ref in refs:
                total.add(self.drain(ref))
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                for report in pool.map(self._in_thread(self.drain), refs):
                    total.add(report)
        self.wait_launches()
        # Events a crash left half-handled: after the new ones, which may be warnings with seconds left.
        if self.finish_pending(older_than=timedelta(0)):
            self.wait_launches()
        self.start_scheduled()
        return total

    def _in_thread(self, fn: Callable) -> Callable:
        def run(arg):
            close_old_connections()
            try:
                return fn(arg)
            finally:
                connection.close()

        return run

    def run(self, stop: threading.Event, *, on_round: Callable[[], None] | None = None) -> None:
        """Poll every queue until ``stop`` is set: one thread per queue (mostly waiting in long polls), the queue set
        refreshed every minute. AWS sessions are shared by the consumer's threads (one per account and region)."""
        with shared_sessions():
            self._run(stop, on_round=on_round)

    def _run(self, stop: threading.Event, *, on_round: Callable[[], None] | None) -> None:
        running: dict[QueueRef, threading.Thread] = {}

        def loop(ref: QueueRef) -> None:
            close_old_connections()
            try:
                while not stop.is_set() and ref in wanted:
                    try:
                        report = self.receive_once(ref)
                        self._complete(report.pending)
                        if report.errors or (report.received == 0 and self.wait_seconds == 0):
                            stop.wait(5 if report.errors else 1)
                        if self._sessions.get(ref) is None:
                            stop.wait(5)
                    except Exception:
                        logger.exception("interruption queue %s failed; polling again shortly", ref)
                        stop.wait(5)
            finally:
                connection.close()

        wanted: set[QueueRef] = set()
        while not stop.is_set():
            try:
                current = set(queues())
                wanted.intersection_update(current)  # never empty in between: a loop still wanted keeps going
                wanted.update(current)
                services.rebalance_uncordon_due()
                self.start_scheduled()
                self.finish_pending()
                if on_round is not None:
                    on_round()
            except Exception:
                logger.exception("refreshing the interruption queues failed")
            for ref in wanted:
                thread = running.get(ref)
                if thread is None or not thread.is_alive():
                    running[ref] = threading.Thread(target=loop, args=(ref,), name=f"interruptions-{ref}", daemon=True)
                    running[ref].start()
            stop.wait(REFRESH_SECONDS)
        for thread in running.values():
            thread.join(timeout=self.wait_seconds + 5)
