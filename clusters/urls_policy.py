"""Console route of the cluster policy, for ``clusters/urls.py`` to include: ``urlpatterns += policy_urlpatterns``."""

from django.urls import path

from . import views_policy

policy_urlpatterns = [
    path("<int:pk>/policy/", views_policy.policy_edit, name="policy"),
]
