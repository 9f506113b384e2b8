"""Test settings: the production code paths with cheap password hashing and eager tasks."""

import os
from urllib.parse import urlsplit, urlunsplit

from .settings import *  # noqa: F403

BCRYPT_ROUNDS = 4
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405

# Under ``pytest -n`` (pytest-xdist) each test process has a Redis database of its own: a test's ``cache.clear()`` is
# a FLUSHDB, which must not wipe the throttle counters and cached values of a test running in the other process.
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", …
if REDIS_URL and _XDIST_WORKER.startswith("gw"):  # noqa: F405
    _parts = urlsplit(REDIS_URL)  # noqa: F405
    _db = (int(_parts.path.strip("/") or 0) + 2 + int(_XDIST_WORKER[2:])) % 16
    _worker_url = urlunsplit(_parts._replace(path=f"/{_db}"))
    CACHES["default"]["LOCATION"] = _worker_url  # noqa: F405
    if CELERY_BROKER_URL == REDIS_URL:  # noqa: F405
        CELERY_BROKER_URL = _worker_url
    REDIS_URL = _worker_url
