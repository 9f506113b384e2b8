from django.urls import path

from . import api

urlpatterns = [
    path("interruptions", api.InterruptionListView.as_view(), name="interruption-list"),
    path("interruption-rates", api.InterruptionRatesView.as_view(), name="interruption-rates"),
]
