"""Events of linked AWS accounts that apps above ``accounts`` react to (the layer order forbids ``accounts`` to
import them). Receivers are connected in the reacting app's ``AppConfig.ready``."""

from django.dispatch import Signal

#: Sent inside the transaction that unlinks an account, before its row is deleted: ``account``, ``at``.
cloud_account_unlinking = Signal()

#: Sent once the transaction that asked for "Sync now" has committed: ``account_id``.
cloud_account_sync_requested = Signal()
