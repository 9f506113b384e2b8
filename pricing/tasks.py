"""Celery adapters for the pricing catalog."""

from __future__ import annotations

import logging

from celery import shared_task

from accounts.aws import session_for
from accounts.models import CloudAccount
from accounts.selectors import enabled_accounts
from cloud import errors as cloud_errors

from . import services

logger = logging.getLogger(__name__)


def _regions_in_use() -> dict[str, int]:
    """Region -> the first active account that uses it (prices are public: one account per region is enough)."""
    regions: dict[str, int] = {}
    for account in enabled_accounts().only("pk", "regions"):
        for region in account.regions:
            regions.setdefault(region, account.pk)
    return regions


@shared_task(
    autoretry_for=(cloud_errors.Throttled, cloud_errors.Unavailable),
    retry_backoff=30,
    retry_jitter=True,
    max_retries=2,
)
def refresh_spot_prices(account_id: int, region: str) -> int:
    """Fetch the last hour of spot prices of ``region`` through ``account_id``."""
    account = CloudAccount.objects.filter(pk=account_id, status=CloudAccount.Status.ACTIVE).first()
    if account is None:
        return 0
    return services.spot_prices_refresh(session=session_for(account, region), region=region)


@shared_task
def sync_all_spot_prices() -> int:
    """Beat, every 10 minutes: one refresh per region that any active account uses (through the first such
    account). Falls back to the snapshot when the catalog is empty."""
    if services.catalog_is_empty():
        services.catalog_load_snapshot()
    regions = _regions_in_use()
    for region, account_id in sorted(regions.items()):
        try:
            refresh_spot_prices.delay(account_id, region)
        except Exception:  # eager mode runs inline: one region's failure must not stop the rest
            logger.exception("spot price refresh of %s failed", region)
    return len(regions)


@shared_task(autoretry_for=(cloud_errors.Throttled,), retry_backoff=60, retry_jitter=True, max_retries=2)
def refresh_region_catalog(account_id: int, region: str) -> dict[str, int]:
    """On-demand prices (Pricing API; kept from the snapshot when unavailable) and per-zone offerings of ``region``."""
    account = CloudAccount.objects.filter(pk=account_id, status=CloudAccount.Status.ACTIVE).first()
    if account is None:
        return {}
    session = session_for(account, region)
    return {
        "on_demand_prices": services.on_demand_prices_refresh(session=session, region=region),
        "offerings": services.offerings_refresh(session=session, region=region),
    }


@shared_task
def refresh_all_region_catalogs() -> int:
    """Beat, daily: on-demand prices and offerings of every region any active account uses."""
    regions = _regions_in_use()
    for region, account_id in sorted(regions.items()):
        try:
            refresh_region_catalog.delay(account_id, region)
        except Exception:  # eager mode runs inline: one region's failure must not stop the rest
            logger.exception("catalog refresh of %s failed", region)
    return len(regions)
