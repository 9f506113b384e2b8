"""Webhook notifications: a job awaiting approval, failed or rolled back posts a Slack-compatible message to the
organization's webhook URL. Delivery is a Celery task queued after commit, retried with backoff; it never blocks or
fails the job."""

from __future__ import annotations

import logging
from typing import Any

import requests
from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from audit.services import record
from spotopt.errors import ValidationFailed

from .. import actions
from ..models import NotificationSettings, OptimizationJob

logger = logging.getLogger(__name__)

DELIVER_TASK = "optimization.tasks.deliver_webhook"
TIMEOUT_SECONDS = 5

HEADLINES = {
    OptimizationJob.State.PENDING_APPROVAL: "awaits approval",
    OptimizationJob.State.FAILED: "failed",
    OptimizationJob.State.ROLLED_BACK: "was rolled back",
}


def job_message(job: OptimizationJob) -> dict[str, Any]:
    """The Slack-compatible body (``text``, plus ``blocks`` for clients that render them)."""
    headline = HEADLINES.get(job.state, job.state)
    cluster = job.cluster
    base = getattr(settings, "CONSOLE_URL", "").rstrip("/")
    link = f"{base}/optimization/jobs/{job.pk}/" if base else f"/optimization/jobs/{job.pk}/"
    saving = f"{job.projected_hourly_saving} USD/h" if job.projected_hourly_saving is not None else "n/a"
    text = (
        f"Optimization job #{job.pk} on cluster {cluster.name} ({cluster.region}) {headline}. "
        f"Projected saving {saving}."
    )
    if job.error:
        text += f" Reason: {job.error}"
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"{text}\n<{link}|Open the job>"}}],
        "job": {"id": job.pk, "cluster_id": cluster.pk, "state": job.state, "trigger": job.trigger},
    }


def notify_job(*, job: OptimizationJob) -> None:
    """Queue the job's notification after the current transaction commits, if the organization set a webhook."""
    url = (
        NotificationSettings.objects.filter(organization_id=job.cluster.organization_id)
        .values_list("webhook_url", flat=True)
        .first()
    )
    if not url:
        return
    payload = job_message(job)

    def send() -> None:
        try:
            current_app.send_task(DELIVER_TASK, args=[job.cluster.organization_id, payload])
        except Exception:  # a broker outage must not break the job runner
            logger.exception("could not queue the webhook of job %s", job.pk)

    transaction.on_commit(send)


def notification_settings_update(*, organization, webhook_url: str, actor: Any = None) -> NotificationSettings:
    """Set (or clear, with "") the organization's webhook URL; audited (the URL is a secret: masked in the log)."""
    webhook_url = (webhook_url or "").strip()
    if webhook_url:
        try:
            URLValidator(schemes=["https", "http"])(webhook_url)
        except ValidationError as exc:
            raise ValidationFailed("Not a valid http(s) URL.", fields={"webhook_url": ["Not a valid URL."]}) from exc
    with transaction.atomic():
        row, _ = NotificationSettings.objects.select_for_update().get_or_create(organization=organization)
        before = bool(row.webhook_url)
        row.webhook_url = webhook_url
        row.save()
        record(
            action=actions.NOTIFICATIONS_UPDATED,
            organization=organization,
            resource=row,
            before={"webhook_set": before},
            after={"webhook_set": bool(webhook_url)},
            actor=actor,
        )
    return row


class WebhookFailed(Exception):
    """The webhook answered with an error or could not be reached (retried by the task)."""


def webhook_deliver(*, organization_id: int, payload: dict[str, Any]) -> bool:
    """POST ``payload`` to the organization's webhook now; False when it has none. Raises WebhookFailed."""
    url = (
        NotificationSettings.objects.filter(organization_id=organization_id)
        .values_list("webhook_url", flat=True)
        .first()
    )
    if not url:
        return False
    try:
        response = requests.post(url, json=payload, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise WebhookFailed(f"webhook unreachable: {type(exc).__name__}") from exc
    if response.status_code >= 300:
        raise WebhookFailed(f"webhook answered {response.status_code}")
    return True
