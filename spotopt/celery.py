"""The Celery app: JSON only, time limits, django-celery-beat's database scheduler (settings ``CELERY_*``)."""

import os
import time

from celery import Celery
from celery.signals import task_postrun, task_prerun

from spotopt.metrics import record_task_runtime

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotopt.settings")

app = Celery("spotopt")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_started: dict[str, float] = {}


@task_prerun.connect
def _task_started(task_id=None, **_kwargs) -> None:
    _started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_finished(task_id=None, task=None, **_kwargs) -> None:
    """Each task's runtime for ``/metrics`` (tick durations), kept in the shared cache."""
    started = _started.pop(task_id, None)
    if started is None or task is None:
        return
    record_task_runtime(task.name, time.perf_counter() - started)  # the cache fails open: never fails a task
