"""The Celery app: JSON only, time limits, django-celery-beat's database scheduler (settings ``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotopt.settings")

app = Celery("spotopt")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
