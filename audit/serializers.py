"""Output of the audit API. There is no input serializer: the API is read-only."""

from __future__ import annotations

from rest_framework import serializers

from .models import ENTRY_FIELDS, AuditLog


class AuditLogSerializer(serializers.ModelSerializer):
    # The id, not the object: listing entries must not fetch organizations row by row.
    organization = serializers.IntegerField(source="organization_id", allow_null=True, read_only=True)

    class Meta:
        model = AuditLog
        # the entry's fields, with the organization as ``organization`` (its id)
        fields = ("id", "created_at", "organization", *ENTRY_FIELDS[2:])
        read_only_fields = fields


class ChainVerdictSerializer(serializers.Serializer):
    chain = serializers.CharField()
    ok = serializers.BooleanField()
    entries = serializers.IntegerField(help_text="entries checked")
    last_seq = serializers.IntegerField()
    last_hash = serializers.CharField()
    problem = serializers.CharField(help_text="seq_gap, link_broken, hash_mismatch, tail_missing or head_missing")
    message = serializers.CharField()
    entry_id = serializers.IntegerField(allow_null=True, help_text="the first broken entry")
    entry_seq = serializers.IntegerField(allow_null=True)


class VerifyResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    chains = ChainVerdictSerializer(many=True)
