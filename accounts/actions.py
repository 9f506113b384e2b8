"""Audit action names of the accounts app, declared once."""

from __future__ import annotations


class AuthAction:
    SIGNUP = "auth.signup"
    LOGIN = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    LOGIN_REFUSED_DEFAULT_PASSWORD = "auth.login_refused_default_password"
    LOGOUT = "auth.logout"
    PASSWORD_CHANGE = "auth.password_change"
    PASSWORD_CHANGE_FAILED = "auth.password_change_failed"
    PASSWORD_SET = "auth.password_set"
    ADMIN_PASSWORD_SET = "auth.admin_password_set"
    REFRESH_TOKEN_REUSED = "auth.refresh_token_reused"


class OrganizationAction:
    CREATED = "organization.created"
    UPDATED = "organization.updated"


class UserAction:
    CREATED = "user.created"
    UPDATED = "user.updated"
