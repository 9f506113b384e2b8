"""``manage.py load_pricing_snapshot``: load the bundled public price snapshot into the catalog."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from pricing.services import catalog_load_snapshot


class Command(BaseCommand):
    help = "Load instance types, on-demand prices and spot price history from pricing/data/aws (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--region",
            action="append",
            dest="regions",
            help="Only load prices of this region (repeatable). Instance types are always loaded.",
        )

    def handle(self, *args, regions: list[str] | None = None, **options) -> None:
        result = catalog_load_snapshot(regions=set(regions) if regions else None)
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {result.instance_types} instance types, {result.on_demand_prices} on-demand prices, "
                f"{result.spot_price_points} spot price records, {result.offerings} zone offerings."
            )
        )
