"""Signed checkpoints: written for moved chains only, logged as JSON lines, and checked by verify_audit so that a
rewritten tail (head row included) or deleted checkpoints are caught; and the append-only triggers fire ALWAYS."""

from __future__ import annotations

import json
import logging
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit.models import AuditChainHead, AuditCheckpoint, AuditLog, AuditLogImmutable, chain_key
from audit.services import CheckpointOutcome, checkpoint_create_all
from audit.tasks import write_checkpoints
from audit.verification import CheckpointProblem, verify_chain, verify_stored_checkpoints
from spotopt.celery import app as celery_app
from tests.audit.helpers import append, tamper

pytestmark = pytest.mark.django_db


@pytest.fixture
def checkpoint_log(tmp_path):
    """The audit.checkpoint logger's output as the product writes it: the configured JSON formatter and filters of
    the console handler, into a file, the way a log collector would keep it."""
    console = next(h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler)
    path = tmp_path / "web.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(console.formatter)
    for log_filter in console.filters:
        handler.addFilter(log_filter)
    logger = logging.getLogger("audit.checkpoint")
    logger.addHandler(handler)
    yield path
    logger.removeHandler(handler)
    handler.close()


def _checkpoint() -> str:
    out = StringIO()
    call_command("audit_checkpoint", stdout=out, stderr=StringIO())
    return out.getvalue()


def _verify(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("verify_audit", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _verify_fails(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    return str(exc.value), err.getvalue()


def _rewrite_tail(chain: str, from_seq: int) -> None:
    """What an attacker with write access to the tables does: change the entries from ``from_seq`` on, recompute
    every hash and link after them and move the head row, so that the chain verifies on its own."""
    entries = list(AuditLog.objects.filter(chain=chain, seq__gte=from_seq).order_by("seq"))
    prev_hash = AuditLog.objects.get(chain=chain, seq=from_seq - 1).hash if from_seq > 1 else ""
    for entry in entries:
        entry.after = {"forged": entry.seq}
        entry.prev_hash = prev_hash
        entry.hash = entry.compute_hash()
        tamper(
            "UPDATE audit_logs SET after = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [json.dumps(entry.after), entry.prev_hash, entry.hash, entry.pk],
        )
        prev_hash = entry.hash
    AuditChainHead.objects.filter(chain=chain).update(last_hash=prev_hash)


def _delete_checkpoints(chain: str, from_seq: int) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only")
        cursor.execute("DELETE FROM audit_checkpoints WHERE chain = %s AND seq >= %s", [chain, from_seq])
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_append_only")


def test_checkpoint_signs_the_head_of_each_moved_chain_and_logs_it_as_a_json_line(org, checkpoint_log):
    entries = append(3, organization=org)
    platform = append(2)

    text = _checkpoint()

    assert f"chain org:{org.pk}: checkpoint at seq 3" in text and "chain platform: checkpoint at seq 2" in text
    stored = {cp.chain: cp for cp in AuditCheckpoint.objects.all()}
    assert set(stored) == {chain_key(org.pk), "platform"}
    assert (stored[chain_key(org.pk)].seq, stored[chain_key(org.pk)].hash) == (3, entries[-1].hash)
    assert (stored["platform"].seq, stored["platform"].hash) == (2, platform[-1].hash)
    for checkpoint in stored.values():
        assert checkpoint.signature_valid(settings.AUDIT_SIGNING_KEY)
        assert not checkpoint.signature_valid("another-key-" + "x" * 40)

    lines = [json.loads(line) for line in checkpoint_log.read_text(encoding="utf-8").splitlines()]
    logged = {line["audit_checkpoint"]["chain"]: line for line in lines}
    assert set(logged) == set(stored)
    line = logged[chain_key(org.pk)]
    assert line["logger"] == "audit.checkpoint" and line["level"] == "INFO"
    assert line["audit_checkpoint"] == {
        **stored[chain_key(org.pk)].payload(),
        "signature": stored[chain_key(org.pk)].signature,
    }


def test_a_second_run_signs_only_chains_that_moved(org):
    other_org_entries = append(2, organization=org)
    append(1)
    checkpoint_create_all()
    assert AuditCheckpoint.objects.count() == 2

    again = checkpoint_create_all()
    assert {o.status for o in again} == {CheckpointOutcome.UNCHANGED}
    assert AuditCheckpoint.objects.count() == 2

    append(3, organization=org)
    outcomes = {o.chain: o for o in checkpoint_create_all()}
    assert outcomes["platform"].status == CheckpointOutcome.UNCHANGED
    assert outcomes[chain_key(org.pk)].status == CheckpointOutcome.WRITTEN
    assert outcomes[chain_key(org.pk)].checkpoint.seq == 5
    assert list(AuditCheckpoint.objects.filter(chain=chain_key(org.pk)).values_list("seq", flat=True)) == [2, 5]
    assert other_org_entries[0].seq == 1


def test_a_chain_tampered_since_its_last_checkpoint_is_not_signed(org):
    append(3, organization=org)
    checkpoint_create_all()
    append(2, organization=org)
    _rewrite_tail(chain_key(org.pk), 2)  # rewrites entries before and after the checkpoint at seq 3
    assert verify_chain(chain_key(org.pk)).ok  # on its own, the rewritten chain looks sound

    err = StringIO()
    with pytest.raises(CommandError, match="1 audit chain"):
        call_command("audit_checkpoint", stdout=StringIO(), stderr=err)
    assert f"chain org:{org.pk}: NOT signed" in err.getvalue()
    assert list(AuditCheckpoint.objects.values_list("seq", flat=True)) == [3]


def test_verify_catches_a_rewritten_tail_and_head_through_the_checkpoint(org):
    entries = append(5, organization=org)
    checkpoint_create_all()
    _verify()  # sound: chains and checkpoints agree

    _rewrite_tail(chain_key(org.pk), 4)
    assert verify_chain(chain_key(org.pk)).ok  # the hash chain alone no longer notices

    message, err = _verify_fails()
    assert "1 checkpoint problem(s)" in message and CheckpointProblem.HASH_MISMATCH in message
    assert f"checkpoint org:{org.pk}#5 (database): {CheckpointProblem.HASH_MISMATCH}" in err
    assert entries[-1].hash[:12] in err


def test_verify_catches_deleted_checkpoints_through_the_exported_log(org, checkpoint_log):
    append(3, organization=org)
    checkpoint_create_all()
    append(2, organization=org)
    checkpoint_create_all()
    # Rewrite what came after the first checkpoint and delete the checkpoint that covered it.
    _rewrite_tail(chain_key(org.pk), 4)
    _delete_checkpoints(chain_key(org.pk), 4)

    out, _ = _verify()  # the database alone is consistent again: one checkpoint, at seq 3, still true
    assert "checkpoints: 1 stored checked" in out

    message, err = _verify_fails("--checkpoints", str(checkpoint_log))
    assert f"{CheckpointProblem.MISSING_FROM_DATABASE}" in err and f"org:{org.pk}#5" in err
    assert f"{CheckpointProblem.HASH_MISMATCH}" in err
    assert "checkpoint problem(s)" in message


def test_exported_checkpoints_are_read_among_other_log_lines_and_prefixes(org, tmp_path):
    append(2, organization=org)
    checkpoint = checkpoint_create_all()[0].checkpoint
    signed = {**checkpoint.payload(), "signature": checkpoint.signature}
    path = tmp_path / "compose.log"
    path.write_text(
        "plain text from a process that does not log JSON\n"
        + json.dumps({"level": "INFO", "logger": "django", "message": "started"})
        + "\n"
        + "beat-1  | "
        + json.dumps({"logger": "audit.checkpoint", "audit_checkpoint": signed})
        + "\n"
        + json.dumps(signed)
        + "\n",
        encoding="utf-8",
    )
    out, _ = _verify("--checkpoints", str(path))
    assert "checkpoints: 2 exported checked" in out

    forged = {**signed, "hash": "0" * 64}
    path.write_text(json.dumps({"audit_checkpoint": forged}) + "\n" + '{"audit_checkpoint": {"chain": \n', "utf-8")
    message, err = _verify_fails("--checkpoints", str(path))
    assert CheckpointProblem.SIGNATURE_INVALID in err and CheckpointProblem.UNREADABLE in err
    assert "2 checkpoint problem(s)" in message


def test_a_stored_checkpoint_with_a_forged_signature_is_named(org):
    entries = append(2, organization=org)
    AuditCheckpoint.objects.create(chain=chain_key(org.pk), seq=2, hash=entries[-1].hash, signature="f" * 64)
    report = verify_stored_checkpoints(key=settings.AUDIT_SIGNING_KEY)
    assert report.checked == 1
    assert [(f.seq, f.problem) for f in report.findings] == [(2, CheckpointProblem.SIGNATURE_INVALID)]
    # And no new checkpoint is signed on top of a forged one.
    append(1, organization=org)
    outcomes = checkpoint_create_all()
    assert [o.status for o in outcomes] == [CheckpointOutcome.BROKEN]


def test_verify_of_one_organization_checks_only_its_checkpoints(org, other_user):
    append(2, organization=org)
    append(2, organization=other_user.organization)
    checkpoint_create_all()
    _rewrite_tail(chain_key(other_user.organization_id), 2)
    out, _ = _verify("--org", str(org.pk))
    assert "checkpoints: 1 stored checked" in out
    _verify_fails("--org", str(other_user.organization_id))


def test_checkpoints_cannot_be_changed_through_the_model(org):
    append(1, organization=org)
    checkpoint = checkpoint_create_all()[0].checkpoint
    checkpoint.seq = 99
    with pytest.raises(AuditLogImmutable):
        checkpoint.save()
    with pytest.raises(AuditLogImmutable):
        checkpoint.delete()
    with pytest.raises(AuditLogImmutable):
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(seq=99)
    with pytest.raises(AuditLogImmutable):
        AuditCheckpoint.objects.all().delete()


def test_beat_runs_the_checkpoint_task_hourly(org):
    entry = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert entry["task"] in celery_app.tasks
    assert entry["schedule"].total_seconds() == 3600
    assert entry["options"]["expires"] < 3600
    append(1, organization=org)
    assert write_checkpoints.delay().get() == {"written": 1, "unchanged": 0, "broken": 0}
    assert AuditCheckpoint.objects.filter(chain=chain_key(org.pk), seq=1).exists()


@pytest.mark.parametrize("table", ["audit_logs", "audit_checkpoints"])
def test_pg_triggers_fire_even_for_a_replica_role_session(org, table):
    """A trigger that is merely ENABLEd is skipped while session_replication_role = replica; these fire ALWAYS."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the triggers exist only there")
    append(1, organization=org)
    checkpoint_create_all()
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = %s", [f"{table}_append_only"])
        assert cursor.fetchone() == ("A",)
    for sql in (f"UPDATE {table} SET seq = seq + 100", f"DELETE FROM {table}", f"TRUNCATE {table}"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(sql)
    assert AuditLog.objects.filter(chain=chain_key(org.pk), seq=1).exists()
    assert AuditCheckpoint.objects.filter(chain=chain_key(org.pk), seq=1).exists()


def test_a_celery_worker_keeps_logging_checkpoints_as_json_lines():
    """Celery replaces the root log handler with its plain-text one unless told not to; the checkpoint copy that
    verify_audit --checkpoints reads back must stay a JSON line in the worker's log."""
    import os
    import subprocess
    import sys

    script = (
        "import django, logging; django.setup()\n"
        "from spotopt.celery import app\n"
        "app.log.setup_logging_subsystem(loglevel='INFO')\n"
        "logging.getLogger('audit.checkpoint').info('audit checkpoint', extra={'audit_checkpoint': {'seq': 7}})\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "spotopt.settings"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert (line["logger"], line["audit_checkpoint"]) == ("audit.checkpoint", {"seq": 7})


@pytest.mark.parametrize(
    "key, starts",
    [
        ("", False),
        ("too-short-for-a-signing-key", False),
        ("dev-insecure-secret-key-change-me-0123456789-abcdefghijklmnopqrstuvwxyz-audit", False),
        ("k" * 48, True),
    ],
)
def test_production_needs_its_own_strong_audit_signing_key(tmp_path, key, starts):
    import os
    import subprocess
    import sys

    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")},
        "ENVIRONMENT": "production",
        "SECRET_KEY": "s" * 60 + "-A1b2C3d4",
        "JWT_SECRET_KEY": "j" * 60 + "-E5f6G7h8",
        "FIELD_ENCRYPTION_KEY": "aDB0ZXN0LWtleS1mb3ItZmllbGQtZW5jcnlwdGlvbjA=",
        "AUDIT_SIGNING_KEY": key,
        "ALLOWED_HOSTS": "spot.example.com",
        "VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode == 0) is starts, result.stderr[-2000:]
    if not starts:
        assert "AUDIT_SIGNING_KEY" in result.stderr


def test_checking_stored_checkpoints_is_one_query_whatever_their_number(django_assert_num_queries):
    from tests.factories import OrganizationFactory

    for _ in range(4):
        append(2, organization=OrganizationFactory())
    checkpoint_create_all()
    assert AuditCheckpoint.objects.count() == 4
    # 1. the checkpoints, each with the hash of the entry at its (chain, seq), streamed
    with django_assert_num_queries(1):
        report = verify_stored_checkpoints(key=settings.AUDIT_SIGNING_KEY)
    assert (report.checked, report.ok) == (4, True)


def test_verify_from_an_archive_anchor_leaves_the_archived_checkpoints_to_the_archive(org):
    """After archived rows were removed (README, Retention), verify_audit --anchor-seq checks the checkpoints past
    the anchor only; without the anchor the removed entries are reported, as they should be."""
    entries = append(3, organization=org)
    checkpoint_create_all()
    append(2, organization=org)
    checkpoint_create_all()
    tamper("DELETE FROM audit_logs WHERE chain = %s AND seq <= %s", [chain_key(org.pk), 3])

    anchor = ["--org", str(org.pk), "--anchor-seq", "3", "--anchor-hash", entries[-1].hash]
    out, _ = _verify(*anchor)
    assert "checkpoints: 1 stored checked" in out
    _, err = _verify_fails("--org", str(org.pk))
    assert f"checkpoint org:{org.pk}#3 (database): {CheckpointProblem.ENTRY_MISSING}" in err
