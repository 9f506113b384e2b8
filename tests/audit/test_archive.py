"""Archiving is exporting: JSON lines that verify on their own and anchor the next verification."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditLog, chain_key
from audit.services import record
from tests.audit.helpers import append

pytestmark = pytest.mark.django_db


def _export(tmp_path, name: str, *args: str) -> tuple[str, str]:
    path = tmp_path / name
    err = StringIO()
    call_command("export_audit", *args, "--output", str(path), stderr=err)
    return str(path), err.getvalue()


def test_archive_round_trip_and_anchor(tmp_path, org):
    entries = append(5, organization=org)
    record(action="x.y", organization=org, after={"text": "née", "price": 0.25})
    first, note = _export(tmp_path, "a1.jsonl", "--org", str(org.pk), "--until-seq", "4")
    assert f"--anchor-seq 4 --anchor-hash {entries[3].hash}" in note
    second, _ = _export(tmp_path, "a2.jsonl", "--org", str(org.pk), "--after-seq", "4")

    out = StringIO()
    call_command("verify_audit", "--archive", first, stdout=out)
    assert "4 entries" in out.getvalue()
    call_command("verify_audit", "--archive", second, "--anchor-seq", "4", "--anchor-hash", entries[3].hash, stdout=out)
    # The live table verifies from the same anchor (nothing was removed from it).
    call_command(
        "verify_audit", "--org", str(org.pk), "--anchor-seq", "4", "--anchor-hash", entries[3].hash, stdout=out
    )
    assert AuditLog.objects.filter(chain=chain_key(org.pk)).count() == 6


def test_a_changed_archive_line_is_named(tmp_path, org):
    entries = append(3, organization=org)
    path, _ = _export(tmp_path, "a.jsonl", "--org", str(org.pk))
    text = open(path, encoding="utf-8").read().replace('"n": 2', '"n": 20', 1)
    open(path, "w", encoding="utf-8").write(text)
    with pytest.raises(CommandError, match=f"entry id={entries[1].pk} seq=2 \\(hash_mismatch\\)"):
        call_command("verify_audit", "--archive", path, stdout=StringIO(), stderr=StringIO())
