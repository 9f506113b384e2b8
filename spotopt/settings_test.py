"""Test settings: the production code paths with cheap password hashing and eager tasks."""

from .settings import *  # noqa: F403

BCRYPT_ROUNDS = 4
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
