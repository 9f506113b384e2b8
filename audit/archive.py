"""Archives of the audit log: JSON lines that carry everything needed to re-verify a chain without the database.

Retention is not deletion: an archive is a copy for cold storage. Each line is one entry's canonical content plus its
id, ``prev_hash`` and ``hash``; the last line's ``(seq, hash)`` is the anchor the next archive (or a verification of
the live table) starts from.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from .models import AuditLog
from .verification import CHUNK_SIZE, Anchor, ChainVerdict, check_entries


def entry_to_line(entry: AuditLog) -> str:
    data: dict[str, Any] = {
        "id": entry.pk,
        **entry.canonical_content(),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def line_to_entry(line: str) -> AuditLog:
    data = json.loads(line)
    return AuditLog(
        pk=data["id"],
        chain=data["chain"],
        seq=data["seq"],
        created_at=dt.datetime.fromisoformat(data["created_at"]),
        organization_id=data["organization_id"],
        actor_type=data["actor_type"],
        actor_id=data["actor_id"],
        actor_label=data["actor_label"],
        action=data["action"],
        resource_type=data["resource_type"],
        resource_id=data["resource_id"],
        before=data["before"],
        after=data["after"],
        ip=data["ip"],
        user_agent=data["user_agent"],
        request_id=data["request_id"],
        prev_hash=data["prev_hash"],
        hash=data["hash"],
    )


def export_chain(chain: str, out: TextIO, *, after_seq: int = 0, until_seq: int | None = None) -> ChainVerdict:
    """Write the chain's entries with ``after_seq < seq <= until_seq`` to ``out``, in seq order, streaming. Returns
    the verdict of what was written (checked on the way out, so a broken chain is never archived silently)."""
    entries = AuditLog.objects.filter(chain=chain, seq__gt=after_seq).order_by("seq")
    if until_seq is not None:
        entries = entries.filter(seq__lte=until_seq)

    def written() -> Iterator[AuditLog]:
        for entry in entries.iterator(chunk_size=CHUNK_SIZE):
            out.write(entry_to_line(entry) + "\n")
            yield entry

    anchor = None
    if after_seq:
        previous = AuditLog.objects.filter(chain=chain, seq=after_seq).values_list("hash", flat=True).first()
        anchor = Anchor(seq=after_seq, hash=previous or "")
    return check_entries(chain, written(), anchor=anchor)


def verify_archive(lines: Iterable[str], *, anchor: Anchor | None = None) -> ChainVerdict:
    """Check an archive file with the same rules as the live table. An archive that does not start at seq 1 needs
    the anchor of the archive before it."""
    entries = (line_to_entry(line) for line in lines if line.strip())
    first = next(entries, None)
    if first is None:
        return ChainVerdict(chain="", ok=True)

    def all_entries() -> Iterator[AuditLog]:
        yield first
        yield from entries

    return check_entries(first.chain, all_entries(), anchor=anchor)
