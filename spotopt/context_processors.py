from django.conf import settings
from django.http import HttpRequest


def console(request: HttpRequest) -> dict:
    return {"ENVIRONMENT": settings.ENVIRONMENT}
