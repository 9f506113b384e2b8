"""The chain: appends, immutability, the PostgreSQL trigger, verification and concurrent writers."""

from __future__ import annotations

import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

from audit.models import AuditChainHead, AuditLog, AuditLogImmutable, chain_key
from audit.services import record
from audit.verification import Anchor, Problem, verify_chain
from tests.audit.helpers import append, tamper
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def test_many_appends_form_one_valid_chain_per_organization(org):
    other = OrganizationFactory()
    for i in range(60):
        record(action="thing.update", organization=org if i % 3 else other, resource_id=i, after={"i": i})

    for organization, expected in ((org, 40), (other, 20)):
        entries = list(AuditLog.objects.filter(chain=chain_key(organization.pk)).order_by("seq"))
        assert [e.seq for e in entries] == list(range(1, expected + 1))
        assert entries[0].prev_hash == ""
        for previous, entry in zip(entries, entries[1:], strict=False):
            assert entry.prev_hash == previous.hash
        assert all(e.hash == e.compute_hash() for e in entries)
        head = AuditChainHead.objects.get(chain=chain_key(organization.pk))
        assert (head.seq, head.last_hash) == (expected, entries[-1].hash)
        verdict = verify_chain(chain_key(organization.pk))
        assert verdict.ok and verdict.entries == expected


def test_entries_without_organization_go_to_the_platform_chain():
    entry = record(action="system.tick", actor="scheduler")
    assert (entry.chain, entry.seq, entry.actor_type, entry.actor_label) == ("platform", 1, "system", "scheduler")


def test_hash_survives_the_database_round_trip(org):
    """Whatever the database normalises (time zone, IPv6 text, JSON numbers) must not change the hash."""
    from django.test import RequestFactory

    request = RequestFactory().get("/", REMOTE_ADDR="2001:0db8:0000::0001", HTTP_USER_AGENT="curl/8")
    entry = record(
        action="thing.update",
        organization=org,
        request=request,
        after={"price": 0.1, "big": 2**53, "nested": {"b": [1, "x"], "a": None}, "text": "née"},
    )
    stored = AuditLog.objects.get(pk=entry.pk)
    assert stored.ip == "2001:db8::1"
    assert stored.compute_hash() == stored.hash


def test_model_and_queryset_refuse_changes(org):
    entry = append(1, organization=org)[0]
    entry.action = "forged"
    with pytest.raises(AuditLogImmutable):
        entry.save()
    with pytest.raises(AuditLogImmutable):
        entry.delete()
    with pytest.raises(AuditLogImmutable):
        AuditLog.objects.filter(pk=entry.pk).update(action="forged")
    with pytest.raises(AuditLogImmutable):
        AuditLog.objects.filter(pk=entry.pk).delete()
    with pytest.raises(AuditLogImmutable), transaction.atomic():  # bulk_update's own atomic block has no savepoint
        AuditLog.objects.bulk_update([entry], ["action"])
    assert AuditLog.objects.get(pk=entry.pk).action == "thing.update"


def test_pg_trigger_rejects_raw_update_delete_and_truncate(org):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the trigger exists only there")
    entry = append(1, organization=org)[0]
    statements = [
        ("UPDATE audit_logs SET action = 'forged' WHERE id = %s", [entry.pk]),
        ("DELETE FROM audit_logs WHERE id = %s", [entry.pk]),
        ("DELETE FROM audit_logs WHERE id = -1", []),  # refused even when no row matches
        ("TRUNCATE audit_logs", []),
    ]
    for sql, params in statements:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    stored = AuditLog.objects.get(pk=entry.pk)
    assert stored.action == "thing.update" and stored.hash == stored.compute_hash()


def test_verify_names_an_entry_changed_behind_the_triggers_back(org):
    entries = append(5, organization=org)
    target = entries[2]
    tamper("UPDATE audit_logs SET after = %s WHERE id = %s", ['{"n": 999}', target.pk])

    verdict = verify_chain(chain_key(org.pk))
    assert not verdict.ok
    assert (verdict.problem, verdict.entry_id, verdict.entry_seq) == (Problem.HASH_MISMATCH, target.pk, 3)
    assert verdict.entries == 2  # the entries before it are still good

    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("verify_audit", "--org", str(org.pk), stdout=out, stderr=err)
    assert exc.value.returncode == 1
    assert f"id={target.pk} seq=3" in str(exc.value) and "hash_mismatch" in str(exc.value)
    assert f"chain org:{org.pk}: BROKEN at entry id={target.pk} seq=3: hash_mismatch" in err.getvalue()


def test_verify_tells_a_broken_link_from_a_hash_mismatch(org):
    """Recomputing the hash of a changed entry hides it from the hash check, but the next entry's link breaks."""
    entries = append(4, organization=org)
    forged = AuditLog.objects.get(pk=entries[1].pk)
    forged.after = {"n": 999}
    tamper(
        "UPDATE audit_logs SET after = %s, hash = %s WHERE id = %s", ['{"n": 999}', forged.compute_hash(), forged.pk]
    )

    verdict = verify_chain(chain_key(org.pk))
    assert (verdict.problem, verdict.entry_id, verdict.entry_seq) == (Problem.LINK_BROKEN, entries[2].pk, 3)


def test_verify_names_a_seq_gap_when_an_entry_is_removed(org):
    entries = append(4, organization=org)
    tamper("DELETE FROM audit_logs WHERE id = %s", [entries[1].pk])

    verdict = verify_chain(chain_key(org.pk))
    assert (verdict.problem, verdict.entry_id, verdict.entry_seq) == (Problem.SEQ_GAP, entries[2].pk, 3)
    assert "expected seq 2" in verdict.message


def test_verify_notices_entries_removed_from_the_end(org):
    entries = append(3, organization=org)
    tamper("DELETE FROM audit_logs WHERE id = %s", [entries[-1].pk])

    verdict = verify_chain(chain_key(org.pk))
    assert (verdict.problem, verdict.entry_seq) == (Problem.TAIL_MISSING, 3)


def test_verify_from_an_anchor_checks_only_what_follows_it(org):
    entries = append(5, organization=org)
    verdict = verify_chain(chain_key(org.pk), anchor=Anchor(seq=2, hash=entries[1].hash))
    assert verdict.ok and verdict.entries == 3
    wrong = verify_chain(chain_key(org.pk), anchor=Anchor(seq=2, hash="0" * 64))
    assert (wrong.problem, wrong.entry_seq) == (Problem.LINK_BROKEN, 3)


def test_verify_command_reports_every_chain_and_exits_zero_when_sound(org):
    append(2, organization=org)
    append(1)
    out = StringIO()
    call_command("verify_audit", stdout=out)
    text = out.getvalue()
    assert "chain platform: ok" in text and f"chain org:{org.pk}: ok, 2 entries" in text
    assert "2 audit chain(s) verified." in text


def test_verify_command_checks_other_chains_after_a_broken_one(org):
    other = OrganizationFactory()
    broken = append(2, organization=org)
    append(2, organization=other)
    tamper("UPDATE audit_logs SET action = %s WHERE id = %s", ["forged", broken[0].pk])

    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 of 2 audit chain"):
        call_command("verify_audit", stdout=out, stderr=err)
    assert f"chain org:{other.pk}: ok" in out.getvalue()
    assert f"BROKEN at entry id={broken[0].pk} seq=1" in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_pg_concurrent_appends_form_one_valid_chain():
    """Writers in parallel threads, each with its own connection, append to one chain: the chain-head lock serializes
    them, so there is no fork (two entries with one prev_hash) and no seq collision."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serializes all writers anyway")
    org = OrganizationFactory()
    threads, per_thread = 8, 15
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with transaction.atomic():
                    record(action="thing.update", organization_id=org.pk, resource_id=f"{n}-{i}")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    entries = list(AuditLog.objects.filter(chain=chain_key(org.pk)).order_by("seq"))
    assert [e.seq for e in entries] == list(range(1, threads * per_thread + 1))
    assert len({e.prev_hash for e in entries}) == len(entries)  # no fork
    verdict = verify_chain(chain_key(org.pk))
    assert verdict.ok and verdict.entries == threads * per_thread
