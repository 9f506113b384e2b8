"""Writes of the hibernation app: schedules and overrides (``schedules``), and the sleep / wake state machine
(``engine``)."""

from .schedules import (
    clean_schedule,
    override_expire,
    schedule_clear_override,
    schedule_create,
    schedule_delete,
    schedule_draft,
    schedule_set_override,
    schedule_update,
)

__all__ = [
    "clean_schedule",
    "override_expire",
    "schedule_clear_override",
    "schedule_create",
    "schedule_delete",
    "schedule_draft",
    "schedule_set_override",
    "schedule_update",
]
