"""Webhook notifications: a job awaiting approval, failed or rolled back posts a Slack-compatible message to the
organization's webhook URL. Delivery is a Celery task queued after commit, retried with backoff; it never blocks or
fails the job."""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

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
MAX_URL_LENGTH = 500  # NotificationSettings.webhook_url's column

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


def mask_webhook_url(url: str) -> str:
    """What may be shown of a webhook URL: scheme, host and the path's last four characters. The path of a Slack (or
    similar) incoming webhook is its secret, and a URL may carry ``user:password@``: neither is ever shown or logged."""
    if not url:
        return ""
    parts = urlsplit(url)
    tail = (parts.path + ("?" + parts.query if parts.query else ""))[-4:]
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…{tail}"


def _refused_address(address: str) -> bool:
    """Link-local (the cloud metadata service), multicast, reserved and unspecified addresses never receive a
    webhook; private and loopback ones only when ``OPTIMIZATION_WEBHOOK_ALLOW_PRIVATE`` is on (development)."""
    ip = ipaddress.ip_address(address)
    if ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return True
    if (ip.is_private or ip.is_loopback) and not settings.OPTIMIZATION_WEBHOOK_ALLOW_PRIVATE:
        return True
    return False


def validate_webhook_url(value: Any) -> str:
    """The cleaned URL ("" clears it) or ValidationFailed: a string, http(s), a host, at most 500 characters, not an
    address the platform refuses to post to. The refused value is never repeated in the message."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed("webhook_url must be a string.", fields={"webhook_url": ["Must be a string."]})
    url = value.strip()
    if not url:
        return ""
    if len(url) > MAX_URL_LENGTH:
        raise ValidationFailed(
            f"The webhook URL is longer than {MAX_URL_LENGTH} characters.",
            fields={"webhook_url": [f"At most {MAX_URL_LENGTH} characters."]},
        )
    try:
        URLValidator(schemes=["https", "http"])(url)
    except ValidationError as exc:
        raise ValidationFailed(
            "Not a valid http(s) URL.", fields={"webhook_url": ["Not a valid http(s) URL."]}
        ) from exc
    host = urlsplit(url).hostname or ""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if (literal is not None and _refused_address(str(literal))) or (
        host == "localhost" and not settings.OPTIMIZATION_WEBHOOK_ALLOW_PRIVATE
    ):
        raise ValidationFailed(
            "The webhook URL points at an address the platform does not post to (private, loopback or link-local).",
            fields={"webhook_url": ["Not a public address."]},
        )
    return url


def notification_settings_get(*, organization) -> NotificationSettings:
    """The organization's settings (unsaved empty ones when it never set any)."""
    return NotificationSettings.objects.filter(organization=organization).first() or NotificationSettings(
        organization=organization
    )


def notification_settings_update(*, organization, webhook_url: Any, actor: Any = None) -> NotificationSettings:
    """Set (or clear, with "") the organization's webhook URL; audited with the masked URL only (the URL is a
    secret: never in the audit log, the logs or an answer)."""
    webhook_url = validate_webhook_url(webhook_url)
    with transaction.atomic():
        row, _ = NotificationSettings.objects.select_for_update().get_or_create(organization=organization)
        before = {"webhook_set": bool(row.webhook_url), "webhook": mask_webhook_url(row.webhook_url)}
        row.webhook_url = webhook_url
        row.save()
        record(
            action=actions.NOTIFICATIONS_UPDATED,
            organization=organization,
            resource=row,
            before=before,
            after={"webhook_set": bool(webhook_url), "webhook": mask_webhook_url(webhook_url)},
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
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except OSError as exc:
        raise WebhookFailed(f"webhook host does not resolve: {type(exc).__name__}") from exc
    if any(_refused_address(a.split("%", 1)[0]) for a in addresses):
        # Not retried: the address will not change its kind. Only the masked URL is logged.
        logger.warning(
            "webhook of organization %s not posted: %s resolves to a refused address",
            organization_id,
            mask_webhook_url(url),
        )
        return False
    try:
        response = requests.post(url, json=payload, timeout=TIMEOUT_SECONDS, allow_redirects=False)
    except requests.RequestException as exc:
        raise WebhookFailed(f"webhook unreachable: {type(exc).__name__}") from exc
    if response.status_code >= 300:
        raise WebhookFailed(f"webhook answered {response.status_code}")
    return True
