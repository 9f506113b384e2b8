"""``manage.py verify_audit [--org ID | --platform] [--checkpoints FILE]``: walk the audit chains and name the first
broken entry, then check the signed checkpoints (stored, and exported to FILE) against them."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.archive import verify_archive
from audit.models import PLATFORM_CHAIN, chain_key
from audit.verification import (
    Anchor,
    ChainVerdict,
    CheckpointReport,
    chains_for,
    verify_chain,
    verify_exported_checkpoints,
    verify_stored_checkpoints,
)


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chains: seq without gaps, every prev_hash linking to the previous entry, every "
        "hash matching its entry's content; then every signed checkpoint (valid signature, the entry at its seq "
        "still has its hash), and with --checkpoints the ones exported to the log, which must also still be stored. "
        "Exits non-zero naming the first broken entry of each broken chain and every failed checkpoint."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--org", type=int, metavar="ID", help="verify only this organization's chain")
        target.add_argument("--platform", action="store_true", help="verify only the platform chain")
        parser.add_argument(
            "--anchor-seq",
            type=int,
            default=None,
            help="start after this seq (the last entry of an archive) instead of the genesis; needs --anchor-hash",
        )
        parser.add_argument("--anchor-hash", default="", help="the hash of the entry at --anchor-seq")
        parser.add_argument(
            "--archive",
            default="",
            metavar="FILE",
            help="verify a JSON-lines archive written by export_audit instead of the database",
        )
        parser.add_argument(
            "--checkpoints",
            default="",
            metavar="FILE",
            help="also check the checkpoints in this log file (JSON lines as audit_checkpoint logs them)",
        )

    def handle(
        self,
        *args: Any,
        org: int | None,
        platform: bool,
        anchor_seq: int | None,
        anchor_hash: str,
        archive: str,
        checkpoints: str,
        **options: Any,
    ) -> None:
        self._stopping = False
        if archive:
            self._verify_archive(archive, anchor_seq=anchor_seq, anchor_hash=anchor_hash)
            return
        previous = signal.signal(signal.SIGTERM, self._on_sigterm) if _in_main_thread() else None
        try:
            self._verify(
                org=org, platform=platform, anchor_seq=anchor_seq, anchor_hash=anchor_hash, checkpoints=checkpoints
            )
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        # Finish the entry in hand and report the walk as interrupted, rather than dying mid-output.
        self._stopping = True

    def _verify_archive(self, path: str, *, anchor_seq: int | None, anchor_hash: str) -> None:
        anchor = Anchor(seq=anchor_seq, hash=anchor_hash) if anchor_seq is not None else None
        with open(path, encoding="utf-8") as lines:
            verdict = verify_archive(lines, anchor=anchor)
        if not verdict.ok:
            self.stderr.write(verdict.describe())
            raise CommandError(
                f"archive {path} is broken at entry id={verdict.entry_id} seq={verdict.entry_seq} ({verdict.problem})"
            )
        self.stdout.write(verdict.describe())
        self.stdout.write(
            self.style.SUCCESS(
                f"archive verified; anchor: --anchor-seq {verdict.last_seq} --anchor-hash {verdict.last_hash}"
            )
        )

    def _verify(
        self, *, org: int | None, platform: bool, anchor_seq: int | None, anchor_hash: str, checkpoints: str
    ) -> None:
        anchor = None
        if anchor_seq is not None or anchor_hash:
            if anchor_seq is None or not anchor_hash or (org is None and not platform):
                raise CommandError("--anchor-seq and --anchor-hash go together, with --org or --platform")
            anchor = Anchor(seq=anchor_seq, hash=anchor_hash)
        if org is not None:
            chains = [chain_key(org)]
        elif platform:
            chains = [PLATFORM_CHAIN]
        else:
            chains = chains_for(all_chains=True)
        if checkpoints and not os.access(checkpoints, os.R_OK):
            raise CommandError(f"cannot read {checkpoints}")

        broken: list[ChainVerdict] = []
        for chain in chains:
            verdict = verify_chain(chain, anchor=anchor, should_stop=lambda: self._stopping)
            if verdict.ok:
                self.stdout.write(verdict.describe())
            else:
                self.stderr.write(verdict.describe())
                broken.append(verdict)
            if self._stopping:
                break

        # Which chains the checkpoints are checked for: the selected ones; with no selection, every checkpoint
        # (including those of a chain whose entries and head are all gone).
        selected = chains if (org is not None or platform) else None
        reports: list[CheckpointReport] = []
        if not self._stopping:
            # With an anchor, the entries up to it may have been archived and removed: their checkpoints are the
            # archive's business.
            after_seq = anchor.seq if anchor else 0
            stored = verify_stored_checkpoints(key=settings.AUDIT_SIGNING_KEY, chains=selected, after_seq=after_seq)
            self.stdout.write(f"checkpoints: {stored.checked} stored checked")
            reports.append(stored)
            if checkpoints:
                with open(checkpoints, encoding="utf-8", errors="replace") as checkpoint_file:
                    exported = verify_exported_checkpoints(
                        checkpoint_file,
                        key=settings.AUDIT_SIGNING_KEY,
                        source=checkpoints,
                        chains=selected,
                        after_seq=after_seq,
                    )
                self.stdout.write(f"checkpoints: {exported.checked} exported checked ({checkpoints})")
                reports.append(exported)
        findings = [finding for report in reports for finding in report.findings]
        for finding in findings:
            self.stderr.write(finding.describe())

        if broken or findings:
            problems = []
            if broken:
                first = broken[0]
                problems.append(
                    f"{len(broken)} of {len(chains)} audit chain(s) broken; first: chain {first.chain} entry "
                    f"id={first.entry_id} seq={first.entry_seq} ({first.problem})"
                )
            if findings:
                first_finding = findings[0]
                problems.append(
                    f"{len(findings)} checkpoint problem(s); first: {first_finding.chain}#{first_finding.seq} "
                    f"({first_finding.problem})"
                )
            raise CommandError("; ".join(problems), returncode=2 if self._stopping else 1)
        self.stdout.write(self.style.SUCCESS(f"{len(chains)} audit chain(s) verified."))


def _in_main_thread() -> bool:
    # signal.signal only works in the main thread; call_command from a test thread skips the handler.
    return threading.current_thread() is threading.main_thread()
