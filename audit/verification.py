"""Walking hash chains: the verdict behind ``manage.py verify_audit`` and ``GET /api/v1/audit/verify``; and checking
the signed checkpoints, stored and exported, against the chains.

A chain is sound when its entries have seq 1, 2, 3, … without gaps, each entry's ``prev_hash`` is the previous
entry's ``hash``, each ``hash`` is the SHA-256 of the entry's own content, and the chain head (the row appends lock)
points at the last entry. The first entry that breaks one of these rules is named; nothing after it is trusted.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db.models import OuterRef, Subquery

from .models import PLATFORM_CHAIN, AuditChainHead, AuditCheckpoint, AuditLog, chain_key, sign_checkpoint

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


# --- Checkpoints -----------------------------------------------------------------------------------------------------
# A chain that verifies on its own can still have been rewritten wholesale from some entry to its end, head row
# included. The signed checkpoints catch that: each names the hash a chain had at a seq, and the signing key is not in
# the database. The exported copy (the log's JSON lines) catches checkpoints deleted from the table.

_CHECKPOINT_FIELDS = ("chain", "seq", "hash", "created_at")


class CheckpointProblem:
    SIGNATURE_INVALID = "checkpoint_signature_invalid"  # not signed with AUDIT_SIGNING_KEY: forged or altered
    ENTRY_MISSING = "checkpoint_entry_missing"  # the chain no longer has an entry at the checkpoint's seq
    HASH_MISMATCH = "checkpoint_hash_mismatch"  # the entry at that seq has another hash: the chain was rewritten
    MISSING_FROM_DATABASE = "checkpoint_missing_from_database"  # exported, but deleted from the table
    DIFFERS_FROM_DATABASE = "checkpoint_differs_from_database"  # exported, and the stored one says otherwise
    UNREADABLE = "checkpoint_unreadable"  # an exported line that names a checkpoint but cannot be read


@dataclass
class CheckpointFinding:
    chain: str
    seq: int | None
    problem: str
    message: str
    source: str  # "database" or "FILE:LINE"

    def describe(self) -> str:
        return f"checkpoint {self.chain}#{self.seq} ({self.source}): {self.problem}: {self.message}"


@dataclass
class CheckpointReport:
    checked: int = 0
    findings: list[CheckpointFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def _entry_finding(chain: str, seq: int, signed_hash: str, entry_hash: str | None, source: str):
    if entry_hash is None:
        return CheckpointFinding(
            chain, seq, CheckpointProblem.ENTRY_MISSING, f"no entry at seq {seq}: entries were removed", source
        )
    if entry_hash != signed_hash:
        return CheckpointFinding(
            chain,
            seq,
            CheckpointProblem.HASH_MISMATCH,
            f"signed hash {signed_hash[:12]}… but the entry at seq {seq} has {entry_hash[:12]}…: the chain was "
            "rewritten from this entry or before it",
            source,
        )
    return None


def verify_stored_checkpoints(*, key: str, chains: Iterable[str] | None = None, after_seq: int = 0) -> CheckpointReport:
    """Every stored checkpoint (of ``chains``, or all; past ``after_seq``, an archive's anchor): signature valid, and
    the entry at its seq has its hash.

    One streamed query: each checkpoint with the hash of the entry at its position (the (chain, seq) unique index)."""
    entry_hash = AuditLog.objects.filter(chain=OuterRef("chain"), seq=OuterRef("seq")).values("hash")[:1]
    checkpoints = AuditCheckpoint.objects.annotate(entry_hash=Subquery(entry_hash)).order_by("chain", "seq")
    if chains is not None:
        checkpoints = checkpoints.filter(chain__in=list(chains))
    if after_seq:
        checkpoints = checkpoints.filter(seq__gt=after_seq)
    report = CheckpointReport()
    for checkpoint in checkpoints.iterator(chunk_size=CHUNK_SIZE):
        report.checked += 1
        if not checkpoint.signature_valid(key):
            report.findings.append(
                CheckpointFinding(
                    checkpoint.chain,
                    checkpoint.seq,
                    CheckpointProblem.SIGNATURE_INVALID,
                    "the signature does not match its content under AUDIT_SIGNING_KEY",
                    "database",
                )
            )
            continue
        finding = _entry_finding(checkpoint.chain, checkpoint.seq, checkpoint.hash, checkpoint.entry_hash, "database")
        if finding is not None:
            report.findings.append(finding)
    return report


def read_checkpoint_lines(lines: Iterable[str], *, source: str) -> Iterator[tuple[str, dict | CheckpointFinding]]:
    """The checkpoints in JSON lines as logged: ``{..., "audit_checkpoint": {...}}`` (a log line, possibly after a
    prefix such as a container name or a timestamp) or the checkpoint object itself. Other lines are skipped."""
    for number, line in enumerate(lines, start=1):
        where = f"{source}:{number}"
        start = line.find("{")
        if start < 0:
            continue
        try:
            data = json.loads(line[start:])
        except ValueError:
            if "audit_checkpoint" in line:
                yield where, CheckpointFinding("?", None, CheckpointProblem.UNREADABLE, "not valid JSON", where)
            continue
        if not isinstance(data, dict):
            continue
        if "audit_checkpoint" in data:
            data = data["audit_checkpoint"]
        elif not {*_CHECKPOINT_FIELDS, "signature"} <= set(data):
            continue
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("chain"), str)
            or not isinstance(data.get("seq"), int)
            or not all(isinstance(data.get(name), str) for name in ("hash", "created_at", "signature"))
        ):
            yield (
                where,
                CheckpointFinding(
                    "?", None, CheckpointProblem.UNREADABLE, "chain, seq, hash, created_at or signature missing", where
                ),
            )
            continue
        yield where, data


def verify_exported_checkpoints(
    lines: Iterable[str], *, key: str, source: str, chains: Iterable[str] | None = None, after_seq: int = 0
) -> CheckpointReport:
    """Checkpoints from the log (``read_checkpoint_lines``): each must be validly signed, still match its chain, and
    still be in the table. Those of other chains than ``chains``, or at or before ``after_seq``, are left out. Read in
    batches, two queries per batch."""
    wanted = set(chains) if chains is not None else None
    report = CheckpointReport()
    batch: list[tuple[str, dict]] = []

    def flush() -> None:
        _check_exported_batch(batch, key=key, report=report)
        batch.clear()

    for where, item in read_checkpoint_lines(lines, source=source):
        if isinstance(item, CheckpointFinding):
            report.findings.append(item)
            continue
        if (wanted is not None and item["chain"] not in wanted) or item["seq"] <= after_seq:
            continue
        batch.append((where, item))
        if len(batch) >= CHUNK_SIZE:
            flush()
    flush()
    return report


def _check_exported_batch(batch: list[tuple[str, dict]], *, key: str, report: CheckpointReport) -> None:
    if not batch:
        return
    chains = {data["chain"] for _, data in batch}
    seqs = {data["seq"] for _, data in batch}
    stored = {(cp.chain, cp.seq): cp for cp in AuditCheckpoint.objects.filter(chain__in=chains, seq__in=seqs)}
    entries = dict(
        ((chain, seq), entry_hash)
        for chain, seq, entry_hash in AuditLog.objects.filter(chain__in=chains, seq__in=seqs)
        .order_by()
        .values_list("chain", "seq", "hash")
    )
    for where, data in batch:
        report.checked += 1
        chain, seq = data["chain"], data["seq"]
        payload = {name: data[name] for name in _CHECKPOINT_FIELDS}
        if not hmac.compare_digest(sign_checkpoint(payload, key), data["signature"]):
            report.findings.append(
                CheckpointFinding(
                    chain,
                    seq,
                    CheckpointProblem.SIGNATURE_INVALID,
                    "the signature does not match the line's content under AUDIT_SIGNING_KEY",
                    where,
                )
            )
            continue
        finding = _entry_finding(chain, seq, data["hash"], entries.get((chain, seq)), where)
        if finding is not None:
            report.findings.append(finding)
        row = stored.get((chain, seq))
        if row is None:
            report.findings.append(
                CheckpointFinding(
                    chain,
                    seq,
                    CheckpointProblem.MISSING_FROM_DATABASE,
                    "logged, but no longer in the checkpoint table: checkpoints were deleted",
                    where,
                )
            )
        elif (row.hash, row.signature) != (data["hash"], data["signature"]):
            report.findings.append(
                CheckpointFinding(
                    chain,
                    seq,
                    CheckpointProblem.DIFFERS_FROM_DATABASE,
                    "the stored checkpoint at this seq is not the one logged",
                    where,
                )
            )
