"""Audit action names of the savings app, declared once."""

LEDGER_OPENED = "savings_ledger.opened"
LEDGER_CLOSED = "savings_ledger.closed"
LEDGER_PAUSED = "savings_ledger.paused"
LEDGER_RESUMED = "savings_ledger.resumed"
SETTINGS_UPDATED = "savings_settings.updated"
