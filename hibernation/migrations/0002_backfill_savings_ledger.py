"""Backfill the savings ledger with the nights that ended before it existed: one hibernation entry per finished
sleep period (capacity at zero until it was asked back, at the nodes' hourly cost), and that time cut out of the
cluster's other entries so that a night is never counted twice."""

from decimal import Decimal

from django.db import migrations


def backfill(apps, schema_editor):
    Period = apps.get_model("hibernation", "HibernationPeriod")
    Entry = apps.get_model("savings", "LedgerEntry")
    periods = Period.objects.filter(awake_at__isnull=False).select_related("cluster").order_by("started_at", "id")
    for period in periods:
        if period.asleep_at and period.waking_at and period.waking_at > period.asleep_at:
            Entry.objects.get_or_create(
                source="hibernation",
                action_type="hibernation_period",
                action_id=str(period.pk),
                defaults={
                    "organization_id": period.cluster.organization_id,
                    "cluster_id": period.cluster_id,
                    "projected_hourly": period.hourly_cost,
                    "counterfactual_hourly": period.hourly_cost,
                    "spot_hourly": Decimal(0),
                    "baseline_hourly": period.hourly_cost,
                    "started_at": period.asleep_at,
                    "ended_at": period.waking_at,
                    "price_source": "backfilled from the sleep period",
                    "detail": {"node_count": period.node_count, "backfilled": True},
                },
            )
        if not (period.asleep_at and period.waking_at and period.waking_at > period.asleep_at):
            continue
        others = Entry.objects.filter(cluster_id=period.cluster_id, started_at__lt=period.waking_at).exclude(
            source="hibernation"
        )
        for entry in others:
            if entry.ended_at is not None and entry.ended_at <= period.asleep_at:
                continue
            pause = [period.asleep_at.isoformat(), period.waking_at.isoformat()]
            if pause not in entry.pauses:
                entry.pauses = [*entry.pauses, pause]
                entry.save(update_fields=["pauses"])


class Migration(migrations.Migration):
    dependencies = [
        ("hibernation", "0001_hibernation_schedules_and_periods"),
        ("savings", "0001_initial"),
        ("optimization", "0002_backfill_savings_ledger"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
