"""Audit action names of the hibernation app, declared once."""

from __future__ import annotations


class Audit:
    SCHEDULE_CREATED = "hibernation_schedule.created"
    SCHEDULE_UPDATED = "hibernation_schedule.updated"
    SCHEDULE_DELETED = "hibernation_schedule.deleted"
    OVERRIDE_SET = "hibernation_schedule.override_set"
    OVERRIDE_CLEARED = "hibernation_schedule.override_cleared"
    OVERRIDE_EXPIRED = "hibernation_schedule.override_expired"
    SLEEP_STARTED = "hibernation.sleep_started"
    SLEEP_STEP = "hibernation.sleep_step"
    ASLEEP = "hibernation.asleep"
    WAKE_STARTED = "hibernation.wake_started"
    WAKE_STEP = "hibernation.wake_step"
    AWAKE = "hibernation.awake"
