"""Audit action names of the interruptions app, declared once."""

RECEIVED = "interruption.received"
HANDLED = "interruption.handled"
REBALANCE_UNCORDONED = "interruption.rebalance_uncordoned"
INSTANCE_STATE = "interruption.instance_state"
FIRST_RESPONSE = "interruption.first_response"
SCHEDULED_REPLACEMENT = "interruption.scheduled_replacement"
