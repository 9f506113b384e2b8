"""``manage.py export_audit --org ID [--after-seq N] [--until-seq M] [--output FILE]``: archive a chain (JSON lines)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.archive import export_chain
from audit.models import PLATFORM_CHAIN, chain_key


class Command(BaseCommand):
    help = (
        "Export one audit chain (or a range of it) as JSON lines for cold storage. Nothing is deleted: the table is "
        "never pruned. Prints the archive's last seq and hash, the anchor to keep with it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--org", type=int, metavar="ID", help="this organization's chain")
        target.add_argument("--platform", action="store_true", help="the platform chain")
        parser.add_argument("--after-seq", type=int, default=0, help="start after this seq (the previous anchor)")
        parser.add_argument("--until-seq", type=int, default=None, help="stop at this seq (inclusive)")
        parser.add_argument("--output", default="-", help="file to write (default: standard output)")

    def handle(
        self,
        *args: Any,
        org: int | None,
        platform: bool,
        after_seq: int,
        until_seq: int | None,
        output: str,
        **options: Any,
    ) -> None:
        chain = PLATFORM_CHAIN if platform else chain_key(org)
        if output == "-":
            verdict = export_chain(chain, sys.stdout, after_seq=after_seq, until_seq=until_seq)
        else:
            with open(output, "w", encoding="utf-8") as out:
                verdict = export_chain(chain, out, after_seq=after_seq, until_seq=until_seq)
        if not verdict.ok:
            raise CommandError(f"exported, but the chain is broken: {verdict.describe()}")
        self.stderr.write(
            f"exported {verdict.entries} entries of chain {chain}; anchor: --anchor-seq {verdict.last_seq} "
            f"--anchor-hash {verdict.last_hash}"
        )
