"""The one authentication backend: every credential check (API login, console login, Django admin login) comes here
and goes through :func:`accounts.services.authenticate`, so the failed-login limits, the production refusal of the
default administrator password and the audit entries apply to all of them alike."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from spotopt.middleware import client_ip

from . import services
from .models import User


class AccountsBackend(ModelBackend):
    """Django's model backend (permissions, session user lookup) with the accounts service as its only password
    check. A refusal is raised as the service's error (limited, wrong credentials, password change required) so
    that each front door can say why; Django admin's login form turns it into a form error."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        email: str | None = None,
        **kwargs,
    ) -> User | None:
        email = email if email is not None else username
        if email is None or password is None:
            return None
        ip = client_ip(request) if request is not None else None
        return services.authenticate(email=email, password=password, ip=ip)
