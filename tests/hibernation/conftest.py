from __future__ import annotations

import pytest

from tests.factories import ClusterFactory

WEEKNIGHTS = {"days": ["mon", "tue", "wed", "thu"], "sleep_at": "20:00", "wake_at": "07:00"}
WEEKEND = {"days": ["fri"], "sleep_at": "20:00", "wake_at": "07:00", "wake_after_days": 3}


@pytest.fixture
def cluster(org):
    return ClusterFactory(organization=org, time_zone="Europe/Berlin")


@pytest.fixture
def other_cluster(db):
    """A cluster of another organization."""
    return ClusterFactory()


def schedule_values(**overrides) -> dict:
    return {"name": "nights and weekends", "windows": [WEEKNIGHTS, WEEKEND], "pre_warm_minutes": 30} | overrides
