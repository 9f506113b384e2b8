"""Deploy checks (``manage.py check --deploy``) for what only an operator can set, and the warning logged at every
start of the web server while production still has the default administrator password."""

import logging

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DatabaseError

logger = logging.getLogger("spotopt.security")


def default_admin_password_in_use() -> bool:
    from accounts.models import User

    try:
        admin = User.objects.filter(email=settings.DEFAULT_ADMIN_EMAIL).first()
    except DatabaseError:
        return False  # no database yet: nothing to check, migrate creates the account
    return admin is not None and admin.check_password(settings.DEFAULT_ADMIN_PASSWORD)


def warn_default_admin_password_at_start() -> bool:
    """Log a warning (production only) while the default super admin still has its default password. Its logins
    are refused in production, but the account should get a real password: ``manage.py set_admin_password``."""
    if not settings.PRODUCTION or not default_admin_password_in_use():
        return False
    logger.warning(
        "the default super admin %s still has its default password; its logins are refused until it is changed: "
        "run manage.py set_admin_password",
        settings.DEFAULT_ADMIN_EMAIL,
    )
    return True


@register(Tags.security, deploy=True)
def default_admin_password(app_configs, **kwargs):
    if default_admin_password_in_use():
        return [
            Warning(
                "The default super admin still has its default password.",
                hint="Run: manage.py set_admin_password",
                id="spotopt.W001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def development_secrets(app_configs, **kwargs):
    if not settings.PRODUCTION:
        return [
            Warning(
                "ENVIRONMENT is development: development secrets and defaults are in use.",
                hint="Set ENVIRONMENT=production with SECRET_KEY and JWT_SECRET_KEY.",
                id="spotopt.W002",
            )
        ]
    return []
