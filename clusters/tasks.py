"""Celery adapters for discovery and inventory. Tasks take ids; a missing or disabled account is nothing to do; one
failing account never stops the others (each runs in its own task)."""

from __future__ import annotations

import logging

from celery import shared_task

from accounts.models import CloudAccount
from accounts.selectors import enabled_accounts
from cloud import errors as cloud_errors

from . import services

logger = logging.getLogger(__name__)

_TRANSIENT = (cloud_errors.Throttled, cloud_errors.Unavailable)


def _active_account(account_id: int) -> CloudAccount | None:
    account = CloudAccount.objects.filter(pk=account_id).first()
    if account is None or not account.is_enabled:
        return None
    return account


@shared_task(
    autoretry_for=_TRANSIENT, retry_backoff=30, retry_backoff_max=600, retry_jitter=True, max_retries=3, acks_late=True
)
def sync_account(account_id: int, discovery: bool = True, inventory: bool = True) -> dict | None:
    """Discovery and/or inventory of one account."""
    account = _active_account(account_id)
    if account is None:
        return None
    report = services.account_sync(account=account, discovery=discovery, inventory=inventory)
    return {"account": account_id, "errors": report.errors}


def _fan_out(*, discovery: bool, inventory: bool) -> int:
    count = 0
    for account_id in enabled_accounts().values_list("pk", flat=True):
        try:
            sync_account.delay(account_id, discovery=discovery, inventory=inventory)
        except Exception:  # eager mode runs inline: one account's failure must not stop the rest
            logger.exception("sync of account %s failed", account_id)
        count += 1
    return count


@shared_task
def discover_all_accounts() -> int:
    """Beat, hourly: discovery (then inventory) for every active account."""
    return _fan_out(discovery=True, inventory=True)


@shared_task
def sync_all_inventories() -> int:
    """Beat, every few minutes: inventory for every active account."""
    return _fan_out(discovery=False, inventory=True)
