"""How clusters react to events of the apps below them (connected in ``ClustersConfig.ready``)."""

from __future__ import annotations

from django.dispatch import receiver

from accounts.signals import cloud_account_sync_requested, cloud_account_unlinking
from templates_app.signals import template_users

from . import services, tasks
from .models import ClusterPolicy


@receiver(cloud_account_unlinking, dispatch_uid="clusters.mark_unlinked")
def mark_clusters_of_unlinked_account(sender, *, account, at, **kwargs) -> None:
    services.clusters_mark_unlinked(account=account, at=at)


@receiver(cloud_account_sync_requested, dispatch_uid="clusters.queue_sync")
def queue_account_sync(sender, *, account_id: int, **kwargs) -> None:
    tasks.sync_account.delay(account_id)


@receiver(template_users, dispatch_uid="clusters.template_users")
def clusters_using_template(sender, *, template, **kwargs) -> list[str]:
    """The clusters whose policy names ``template``, by name."""
    return list(
        ClusterPolicy.objects.filter(node_template=template).order_by("cluster__name").values_list(
            "cluster__name", flat=True
        )
    )
