"""bcrypt password hashing with the cost factor taken from ``BCRYPT_ROUNDS``."""

from django.conf import settings
from django.contrib.auth import hashers


class BCryptSHA256PasswordHasher(hashers.BCryptSHA256PasswordHasher):
    """Django's bcrypt hasher; ``rounds`` follows the settings so operators can raise it without code changes."""

    @property
    def rounds(self) -> int:  # type: ignore[override]
        return settings.BCRYPT_ROUNDS
