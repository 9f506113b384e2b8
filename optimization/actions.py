"""Audit action names of the optimization app, declared once."""

JOB_CREATED = "optimization_job.created"
JOB_APPROVED = "optimization_job.approved"
JOB_CANCEL_REQUESTED = "optimization_job.cancel_requested"
JOB_TRANSITION = "optimization_job.transition"
JOB_STEP = "optimization_job.step"
JOB_FALLBACK = "optimization_job.fallback"
NOTIFICATIONS_UPDATED = "notification_settings.updated"
