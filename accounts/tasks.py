"""Periodic housekeeping of the accounts app."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def purge_expired_token_revocations() -> dict[str, int]:
    return services.token_revocations_purge()
