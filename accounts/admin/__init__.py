"""Organizations, users and linked AWS accounts in Django admin. Every write goes through ``accounts.services``."""

from . import cloud_accounts, organizations, tokens, users

__all__ = ["cloud_accounts", "organizations", "tokens", "users"]
