"""Walking hash chains: the verdict behind ``manage.py verify_audit`` and ``GET /api/v1/audit/verify``.

A chain is sound when its entries have seq 1, 2, 3, … without gaps, each entry's ``prev_hash`` is the previous
entry's ``hash``, each ``hash`` is the SHA-256 of the entry's own content, and the chain head (the row appends lock)
points at the last entry. The first entry that breaks one of these rules is named; nothing after it is trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from .models import PLATFORM_CHAIN, AuditChainHead, AuditLog, chain_key

CHUNK_SIZE = 2000


class Problem:
    """Machine-readable names of what can be wrong with an entry."""

    SEQ_GAP = "seq_gap"  # an entry is missing (or was renumbered) before this one
    LINK_BROKEN = "link_broken"  # prev_hash is not the previous entry's hash
    HASH_MISMATCH = "hash_mismatch"  # the content no longer matches the hash stored with it
    TAIL_MISSING = "tail_missing"  # the chain head points past the last entry: entries were removed from the end
    HEAD_MISSING = "head_missing"  # entries exist but their chain head does not
    INTERRUPTED = "interrupted"  # the walk was stopped before the end (SIGTERM)


@dataclass
class Anchor:
    """Where to start a walk other than at the genesis: the last entry of an exported archive (see README)."""

    seq: int
    hash: str


@dataclass
class ChainVerdict:
    chain: str
    ok: bool = True
    entries: int = 0
    last_seq: int = 0
    last_hash: str = ""
    problem: str = ""
    message: str = ""
    entry_id: int | None = None
    entry_seq: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def fail(self, problem: str, message: str, entry: AuditLog | None = None, seq: int | None = None) -> ChainVerdict:
        self.ok = False
        self.problem = problem
        self.message = message
        if entry is not None:
            self.entry_id = entry.pk
            self.entry_seq = entry.seq
        elif seq is not None:
            self.entry_seq = seq
        return self

    def describe(self) -> str:
        if self.ok:
            return f"chain {self.chain}: ok, {self.entries} entries (last seq {self.last_seq})"
        where = f"entry id={self.entry_id} seq={self.entry_seq}" if self.entry_id else f"seq {self.entry_seq}"
        return f"chain {self.chain}: BROKEN at {where}: {self.problem}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        return data


def check_entries(
    chain: str,
    entries: Iterable[AuditLog],
    *,
    anchor: Anchor | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ChainVerdict:
    """Check ``entries`` (in seq order) as one chain, from the genesis or from ``anchor``. Works on unsaved
    instances too, so an exported archive can be checked with the same rules."""
    verdict = ChainVerdict(chain=chain)
    expected_seq = (anchor.seq if anchor else 0) + 1
    prev_hash = anchor.hash if anchor else ""
    prev_label = f"anchor seq {anchor.seq}" if anchor else "the start of the chain"
    for entry in entries:
        if should_stop is not None and should_stop():
            return verdict.fail(Problem.INTERRUPTED, "stopped before the end of the chain", seq=expected_seq)
        if entry.seq != expected_seq:
            return verdict.fail(
                Problem.SEQ_GAP, f"expected seq {expected_seq} after {prev_label}, found seq {entry.seq}", entry
            )
        if entry.prev_hash != prev_hash:
            return verdict.fail(
                Problem.LINK_BROKEN,
                f"prev_hash {entry.prev_hash[:12]}… does not match the hash {prev_hash[:12] or '(empty)'}… of "
                f"{prev_label}",
                entry,
            )
        computed = entry.compute_hash()
        if computed != entry.hash:
            return verdict.fail(
                Problem.HASH_MISMATCH,
                f"stored hash {entry.hash[:12]}… but the content hashes to {computed[:12]}…: the entry was changed",
                entry,
            )
        verdict.entries += 1
        verdict.last_seq = entry.seq
        verdict.last_hash = entry.hash
        prev_hash = entry.hash
        prev_label = f"entry id={entry.pk} seq={entry.seq}" if entry.pk else f"seq {entry.seq}"
        expected_seq += 1
    return verdict


def verify_chain(
    chain: str, *, anchor: Anchor | None = None, should_stop: Callable[[], bool] | None = None
) -> ChainVerdict:
    """Walk one chain in the database, streaming it in seq order so that its size does not matter."""
    # The head is read first: entries appended while the walk runs have a higher seq and are left for the next run.
    head = AuditChainHead.objects.filter(chain=chain).first()
    entries = AuditLog.objects.filter(chain=chain).order_by("seq")
    if anchor is not None:
        entries = entries.filter(seq__gt=anchor.seq)
    if head is not None:
        entries = entries.filter(seq__lte=head.seq)
    verdict = check_entries(chain, entries.iterator(chunk_size=CHUNK_SIZE), anchor=anchor, should_stop=should_stop)
    if not verdict.ok:
        return verdict
    if head is None:
        if verdict.entries:
            return verdict.fail(
                Problem.HEAD_MISSING, "entries exist but the chain head row is missing", seq=verdict.last_seq
            )
        return verdict
    start_seq = anchor.seq if anchor else 0
    last_seq = verdict.last_seq or start_seq
    last_hash = verdict.last_hash or (anchor.hash if anchor else "")
    if head.seq != last_seq or head.last_hash != last_hash:
        return verdict.fail(
            Problem.TAIL_MISSING,
            f"the chain head is at seq {head.seq} but the last entry found is seq {last_seq}: entries were removed "
            "from the end of the chain",
            seq=last_seq + 1,
        )
    return verdict


def chains_for(*, organization_id: int | None = None, all_chains: bool = False) -> list[str]:
    """The chains to verify: one organization's, or every chain (heads and entries alike, so that a chain whose head
    was removed is still found)."""
    if not all_chains:
        return [chain_key(organization_id)]
    chains = set(AuditChainHead.objects.values_list("chain", flat=True))
    chains.update(AuditLog.objects.order_by().values_list("chain", flat=True).distinct())
    return sorted(chains, key=_chain_order)


def _chain_order(chain: str) -> tuple[int, int, str]:
    """The platform chain first, then organizations in id order: stable output for operators and tests."""
    if chain == PLATFORM_CHAIN:
        return (0, 0, chain)
    number = chain.removeprefix("org:")
    return (1, int(number), chain) if number.isdigit() else (2, 0, chain)


def verify_chains(chains: Iterable[str], *, should_stop: Callable[[], bool] | None = None) -> list[ChainVerdict]:
    return [verify_chain(chain, should_stop=should_stop) for chain in chains]
