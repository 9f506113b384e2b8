from django.urls import path

from . import api

urlpatterns = [
    path("auth/signup", api.SignupView.as_view(), name="auth-signup"),
    path("auth/login", api.LoginView.as_view(), name="auth-login"),
    path("auth/refresh", api.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", api.LogoutView.as_view(), name="auth-logout"),
    path("auth/change-password", api.ChangePasswordView.as_view(), name="auth-change-password"),
    path("auth/me", api.MeView.as_view(), name="auth-me"),
    path("accounts", api.CloudAccountListView.as_view(), name="cloud-account-list"),
    path("accounts/<int:pk>", api.CloudAccountDetailView.as_view(), name="cloud-account-detail"),
    path("accounts/<int:pk>/validate", api.CloudAccountValidateView.as_view(), name="cloud-account-validate"),
    path("accounts/<int:pk>/disable", api.CloudAccountDisableView.as_view(), name="cloud-account-disable"),
    path("accounts/<int:pk>/sync", api.CloudAccountSyncView.as_view(), name="cloud-account-sync"),
    path(
        "accounts/<int:pk>/cloudformation", api.CloudAccountTemplateView.as_view(), name="cloud-account-cloudformation"
    ),
    path(
        "accounts/<int:pk>/interruption-template",
        api.CloudAccountInterruptionTemplateView.as_view(),
        name="cloud-account-interruption-template",
    ),
]
